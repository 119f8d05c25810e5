// The WebSocket endpoint (upgrade + auth) and its REST companions: health, stats, broadcast.
import type { Server } from "bun";
import { Elysia } from "elysia";
import { bearer } from "../auth.ts";
import { normalizeContent } from "../protocol.ts";
import type { Conn } from "../ws/connection.ts";
import { roomSummary } from "../ws/hub.ts";
import { currentUser, type Deps, superuser } from "./context.ts";
import { detail, HttpError } from "./errors.ts";
import { BroadcastBody } from "./schemas.ts";

/**
 * The WebSocket endpoint as a Bun native route (registered through Elysia's `serve.routes`):
 * an upgrade skips Elysia's request pipeline, which measured as a large share of the cost of a
 * connection. Authentication happens before the upgrade; a refused socket is still upgraded,
 * then closed with 1008 and a reason the client can read.
 */
export function wsUpgrade(deps: Deps) {
  const { hub, tokens, log } = deps;
  return async (request: Request, server: Server<Conn>): Promise<Response | undefined> => {
    const url = request.url;
    const q = url.indexOf("?");
    const params = new URLSearchParams(q < 0 ? "" : url.slice(q + 1));
    let data: Conn;
    let cause: string | undefined;
    const format = params.get("format") ?? "json";
    if (format !== "json" && format !== "text") data = hub.refuse("Unsupported format");
    else {
      const token = params.get("token") ?? bearer(request.headers.get("authorization"));
      const auth = await tokens.authenticate(token);
      if (auth.ok) data = hub.accept(auth.user.id, format, auth.exp);
      else {
        cause = auth.cause;
        data = hub.refuse("Authentication failed");
      }
    }
    // Bun checks the upgrade headers itself; a plain request is answered here, and not logged.
    if (!server.upgrade(request, { data }))
      return detail(426, "Expected a WebSocket upgrade", { upgrade: "websocket" });
    if (cause !== undefined)
      log.warn("ws auth failed", { cause, ip: server.requestIP(request)?.address ?? "unknown" });
    return undefined;
  };
}

/** REST companions of the WebSocket endpoint: health, stats, broadcast. */
export function wsRoutes(deps: Deps) {
  const { hub } = deps;
  return new Elysia({ prefix: "/api/v1" })
    .get("/ws/health", () => ({
      status: "healthy",
      service: "websocket",
      active_connections: hub.connections,
    }))
    .get("/ws/stats", async ({ request }) => {
      await currentUser(deps, request);
      const rooms = (await hub.registry.list()).map(roomSummary);
      return { total_connections: hub.connections, total_rooms: rooms.length, rooms };
    })
    .post(
      "/ws/broadcast",
      async ({ request, body }) => {
        const me = await superuser(deps, request);
        const bad = normalizeContent(body);
        if (bad !== undefined) throw new HttpError(422, bad);
        const id = hub.broadcast(me.id, body.content);
        return { status: "sent", id, recipients: hub.connections };
      },
      { body: BroadcastBody },
    );
}
