// The WebSocket endpoint (upgrade + auth) and its REST companions: health, stats, internals,
// broadcast.
import { readdirSync } from "node:fs";
import type { Server } from "bun";
import { Elysia } from "elysia";
import { type AuthResult, bearer } from "../auth.ts";
import { type Format, normalizeContent } from "../protocol.ts";
import { StoreUnavailableError } from "../users/store.ts";
import type { Conn } from "../ws/connection.ts";
import { roomSummary } from "../ws/hub.ts";
import { currentUser, type Deps, superuser } from "./context.ts";
import { detail, HttpError } from "./errors.ts";
import { ROUTE_DOCS } from "./route-docs.ts";
import { BroadcastBody } from "./schemas.ts";

/**
 * The WebSocket endpoint as a Bun native route (registered through Elysia's `serve.routes`):
 * an upgrade skips Elysia's request pipeline, which measured as a large share of the cost of a
 * connection. Authentication happens before the upgrade; a refused socket is still upgraded,
 * then closed with 1008 and a reason the client can read. When the user is not in the store's
 * memory and the user database is unreachable, the upgrade is answered with HTTP 503 and
 * `Retry-After` instead (like the connect rate limit's 429): nothing is wrong with the token,
 * so the client should retry later rather than log in again.
 */
export function wsUpgrade(deps: Deps) {
  const { hub, tokens, log, connectLimit, refusals, upgradePacer: pacer, clientAddress } = deps;
  /** Connect-rate refusals logged since the last log line about them (one line per second). */
  let refused = 0;
  let refusedLogAt = 0;
  /** Upgrades with `data`; `cause` (an auth failure) is logged, never the token. */
  const finish = (
    request: Request,
    server: Server<Conn>,
    data: Conn,
    cause: string | undefined,
  ): Response | undefined => {
    // Bun checks the upgrade headers itself; a plain request is answered here, and not logged.
    if (!server.upgrade(request, { data }))
      return detail(426, "Expected a WebSocket upgrade", { upgrade: "websocket" });
    if (cause !== undefined) hub.metrics.authFailure(cause);
    if (cause !== undefined)
      log.warn("ws auth failed", { cause, ip: clientAddress.of(request, server) });
    return undefined;
  };
  const accept = (request: Request, server: Server<Conn>, auth: AuthResult, format: Format) =>
    auth.ok
      ? finish(request, server, hub.accept(auth.user.id, format, auth.exp), undefined)
      : finish(request, server, hub.refuse("Authentication failed"), auth.cause);
  // Not an async function: with the user in the store's memory the whole upgrade runs in one go.
  return (
    request: Request,
    server: Server<Conn>,
  ): Response | undefined | Promise<Response | undefined> => {
    if (connectLimit.enabled) {
      const ip = clientAddress.of(request, server);
      const now = Date.now();
      const wait = connectLimit.take(ip, now);
      if (wait > 0) {
        refused++;
        if (now - refusedLogAt >= 1000) {
          log.warn("connect rate limit", { ip, refused });
          refused = 0;
          refusedLogAt = now;
        }
        return refusals.hold(() =>
          detail(429, "Too many new connections from this address", {
            "retry-after": String(wait),
          }),
        );
      }
    }
    const turn = pacer.enabled ? pacer.admit() : true;
    return turn === true
      ? authenticate(request, server)
      : turn.then(() => authenticate(request, server));
  };
  function authenticate(
    request: Request,
    server: Server<Conn>,
  ): Response | undefined | Promise<Response | undefined> {
    const url = request.url;
    const q = url.indexOf("?");
    const params = new URLSearchParams(q < 0 ? "" : url.slice(q + 1));
    const format = params.get("format") ?? "json";
    if (format !== "json" && format !== "text")
      return finish(request, server, hub.refuse("Unsupported format"), undefined);
    const token = params.get("token") ?? bearer(request.headers.get("authorization"));
    const auth = tokens.authenticate(token);
    if (auth instanceof Promise)
      return auth.then(
        (a) => accept(request, server, a, format),
        (e: unknown) => {
          if (!(e instanceof StoreUnavailableError)) throw e;
          log.warn("ws upgrade refused: user store unavailable", { error: e.message });
          return detail(503, "Service temporarily unavailable", { "retry-after": "5" });
        },
      );
    return accept(request, server, auth, format);
  }
}

/** This process: resident and heap memory, open file descriptors (Linux; null elsewhere). */
function processSizes(): { process: Record<string, number | null> } {
  const mem = process.memoryUsage();
  let fds: number | null = null;
  try {
    fds = readdirSync("/proc/self/fd").length;
  } catch {}
  return {
    process: { rss_bytes: mem.rss, heap_used_bytes: mem.heapUsed, open_fds: fds },
  };
}

/** REST companions of the WebSocket endpoint: health, stats, internals, broadcast. */
export function wsRoutes(deps: Deps) {
  const { hub } = deps;
  const upgrade = wsUpgrade(deps);
  return new Elysia({ prefix: "/api/v1" })
    .get(
      "/ws/",
      ({ request, server }) =>
        server ? upgrade(request, server as Server<Conn>) : detail(500, "No server"),
      { detail: ROUTE_DOCS.upgrade },
    )
    .get(
      "/ws/health",
      () => {
        const redis = hub.broker.state;
        return {
          status: redis === "down" ? "degraded" : "healthy",
          service: "websocket",
          active_connections: hub.connections,
          node: hub.nodeId,
          redis,
        };
      },
      { detail: ROUTE_DOCS.health },
    )
    .get(
      "/ws/stats",
      async ({ request }) => {
        await currentUser(deps, request);
        const [list, nodes] = await Promise.all([hub.registry.list(), hub.nodeList()]);
        const rooms = list.map(roomSummary);
        const total = nodes.reduce((sum, n) => sum + n.connections, 0);
        return { total_connections: total, total_rooms: rooms.length, rooms, nodes };
      },
      { detail: ROUTE_DOCS.stats },
    )
    .get(
      "/ws/internals",
      async ({ request }) => {
        await superuser(deps, request);
        const upgrades = {
          waiting: deps.upgradePacer.queued,
          refusals_held: deps.refusals.size,
          connect_buckets: deps.connectLimit.size,
        };
        return { node: hub.nodeId, ...processSizes(), upgrades, ...hub.internals() };
      },
      { detail: ROUTE_DOCS.internals },
    )
    .post(
      "/ws/broadcast",
      async ({ request, body }) => {
        const me = await superuser(deps, request);
        const bad = normalizeContent(body);
        if (bad !== undefined) throw new HttpError(422, bad);
        const id = hub.broadcast(me.id, body.content);
        return { status: "sent", id, recipients: hub.connections };
      },
      { body: BroadcastBody, detail: ROUTE_DOCS.broadcast },
    );
}
