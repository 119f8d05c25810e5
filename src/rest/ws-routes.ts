// The WebSocket endpoint (upgrade + auth) and its REST companions: health, stats, broadcast.
import { Elysia } from "elysia";
import { bearer } from "../auth.ts";
import type { Format } from "../protocol.ts";
import type { Conn } from "../ws/connection.ts";
import { roomSummary } from "../ws/hub.ts";
import { currentUser, type Deps, superuser } from "./context.ts";
import { HttpError } from "./errors.ts";
import { BroadcastBody } from "./schemas.ts";

export function wsRoutes(deps: Deps) {
  const { hub, tokens, log } = deps;

  /** Authenticates the upgrade request; a refused socket is still upgraded, then closed 1008. */
  const connData = async (request: Request, url: URL, ip: string): Promise<Conn> => {
    const format = url.searchParams.get("format") ?? "json";
    if (format !== "json" && format !== "text") return hub.refuse("Unsupported format");
    const token = url.searchParams.get("token") ?? bearer(request.headers.get("authorization"));
    const auth = await tokens.authenticate(token);
    if (!auth.ok) {
      log.warn("ws auth failed", { cause: auth.cause, ip });
      return hub.refuse("Authentication failed");
    }
    return hub.accept(auth.user.id, format as Format, auth.exp);
  };

  return new Elysia({ prefix: "/api/v1" })
    .get("/ws", async ({ request, server }) => {
      if (request.headers.get("upgrade")?.toLowerCase() !== "websocket" || !server)
        throw new HttpError(426, "Expected a WebSocket upgrade", { upgrade: "websocket" });
      const ip = server.requestIP(request)?.address ?? "unknown";
      const data = await connData(request, new URL(request.url), ip);
      if (server.upgrade(request, { data })) return;
      throw new HttpError(400, "WebSocket upgrade failed");
    })
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
        const content = body.content.trim();
        if (content.length === 0 || content.length > 10000)
          throw new HttpError(422, "content: must be 1-10000 characters after trimming");
        const id = hub.broadcast(me.id, content);
        return { status: "sent", id, recipients: hub.connections };
      },
      { body: BroadcastBody },
    );
}
