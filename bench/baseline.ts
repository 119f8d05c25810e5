// Baseline: a bare `Bun.serve` with Bun topics speaking the subset of Kabar's protocol the
// benchmark uses. `GET /api/v1/ws?token=` (HS256 JWT, SECRET_KEY, exp required), one welcome,
// create_room (a no-op reply), join_room (subscribe to the room topic), leave_room, and message
// (one JSON frame published to the room topic, the sender included, as Kabar's JSON format).
// No user lookup, no registry: the floor that Kabar is measured against.
// Env: PORT (0 = any), SECRET_KEY, optional RATE_LIMIT_CAPACITY / RATE_LIMIT_REFILL_PER_SECOND
// (a per-user token bucket, as Kabar's, for the noisy-neighbour scenario). Prints {"port":N}.
import { createHmac, timingSafeEqual } from "node:crypto";
import type { ServerWebSocket } from "bun";

const SECRET = process.env.SECRET_KEY ?? "";
if (SECRET.length < 32) {
  console.error("baseline: SECRET_KEY of at least 32 characters required");
  process.exit(1);
}
const CAPACITY = Number(process.env.RATE_LIMIT_CAPACITY ?? 0);
const REFILL_PER_MS = Number(process.env.RATE_LIMIT_REFILL_PER_SECOND ?? 0) / 1000;
const ROOM = /^[a-zA-Z0-9_-]{1,100}$/;

interface Bucket {
  tokens: number;
  last: number;
}
interface Data {
  userId: string;
  room: string | null;
  bucket: Bucket | null;
  reject: boolean;
}
const buckets = new Map<string, Bucket>();

function claims(token: string | null): { sub: string; exp: number } | null {
  if (!token || token.length > 4096) return null;
  const [h, p, s] = token.split(".");
  if (!h || !p || !s) return null;
  const want = createHmac("sha256", SECRET).update(`${h}.${p}`).digest();
  const got = Buffer.from(s, "base64url");
  if (got.length !== want.length || !timingSafeEqual(got, want)) return null;
  try {
    const header = JSON.parse(Buffer.from(h, "base64url").toString()) as { alg?: unknown };
    const body = JSON.parse(Buffer.from(p, "base64url").toString()) as {
      sub?: unknown;
      exp?: unknown;
    };
    if (header.alg !== "HS256" || typeof body.sub !== "string" || typeof body.exp !== "number")
      return null;
    if (body.exp * 1000 <= Date.now()) return null;
    return { sub: body.sub, exp: body.exp };
  } catch {
    return null;
  }
}

function take(data: Data): boolean {
  const b = data.bucket;
  if (b === null) return true;
  const now = Date.now();
  if (now > b.last) {
    b.tokens = Math.min(CAPACITY, b.tokens + (now - b.last) * REFILL_PER_MS);
    b.last = now;
  }
  if (b.tokens < 1) return false;
  b.tokens -= 1;
  return true;
}

const error = (code: string, text: string) => JSON.stringify({ type: "error", code, text });
const topic = (room: string) => `r:${room}`;

function onMessage(ws: ServerWebSocket<Data>, raw: string | Buffer): void {
  const d = ws.data;
  if (!take(d)) {
    ws.send(error("rate_limited", "[System] Rate limit exceeded. Try again in 1s."));
    return;
  }
  if (typeof raw !== "string") {
    ws.send(error("invalid_message", "[System] Invalid message: binary frames are not supported"));
    return;
  }
  let cmd: { type?: unknown; room_name?: unknown; content?: unknown };
  try {
    cmd = JSON.parse(raw) as typeof cmd;
  } catch {
    ws.send(error("invalid_json", "[System] Invalid JSON format. Please send valid JSON."));
    return;
  }
  if (cmd === null || typeof cmd !== "object") {
    ws.send(error("invalid_message", "[System] Invalid message: expected a JSON object"));
    return;
  }
  switch (cmd.type) {
    case "message": {
      const content = typeof cmd.content === "string" ? cmd.content.trim() : "";
      if (content.length === 0 || content.length > 10000) {
        ws.send(error("invalid_message", "[System] Invalid message: content"));
        return;
      }
      if (d.room === null) {
        ws.send(error("not_in_room", "[System] You need to join a room first to send messages!"));
        return;
      }
      const frame = JSON.stringify({
        type: "message",
        id: Bun.randomUUIDv7(),
        room: d.room,
        from: d.userId,
        content,
        sent_at: new Date().toISOString(),
      });
      server.publish(topic(d.room), frame);
      return;
    }
    case "join_room":
    case "create_room": {
      const room = cmd.room_name;
      if (typeof room !== "string" || !ROOM.test(room)) {
        ws.send(error("invalid_message", "[System] Invalid message: room_name"));
        return;
      }
      if (cmd.type === "create_room") {
        ws.send(
          JSON.stringify({
            type: "room_created",
            room,
            text: `[System] Room '${room}' created successfully!`,
          }),
        );
        return;
      }
      if (d.room !== null) ws.unsubscribe(topic(d.room));
      d.room = room;
      ws.subscribe(topic(room));
      ws.send(
        JSON.stringify({
          type: "room_joined",
          room,
          members: server.subscriberCount(topic(room)),
          text: `[System] Joined room '${room}' successfully!`,
        }),
      );
      return;
    }
    case "leave_room": {
      const room = d.room;
      if (room === null) {
        ws.send(error("not_in_room", "[System] You are not in any room!"));
        return;
      }
      ws.unsubscribe(topic(room));
      d.room = null;
      ws.send(
        JSON.stringify({
          type: "room_left",
          room,
          text: `[System] Left room '${room}' successfully!`,
        }),
      );
      return;
    }
    default:
      ws.send(
        typeof cmd.type === "string" && /^[a-z_]+$/.test(cmd.type)
          ? error("unknown_type", `[System] Unknown message type: '${cmd.type}'`)
          : error("invalid_message", "[System] Invalid message: type"),
      );
  }
}

const server = Bun.serve({
  hostname: "0.0.0.0",
  port: Number(process.env.PORT ?? 0),
  fetch(req, srv) {
    const url = new URL(req.url);
    if (url.pathname === "/api/v1/ws/health") return Response.json({ status: "healthy" });
    if (url.pathname !== "/api/v1/ws") return new Response("Not Found", { status: 404 });
    const c = claims(url.searchParams.get("token"));
    let bucket: Bucket | null = null;
    if (c && CAPACITY > 0) {
      bucket = buckets.get(c.sub) ?? { tokens: CAPACITY, last: Date.now() };
      buckets.set(c.sub, bucket);
    }
    const data: Data = { userId: c?.sub ?? "", room: null, bucket, reject: c === null };
    if (srv.upgrade(req, { data })) return undefined;
    return new Response("Expected a WebSocket upgrade", { status: 426 });
  },
  websocket: {
    data: {} as Data,
    maxPayloadLength: 65536,
    idleTimeout: 60,
    sendPings: true,
    backpressureLimit: 1048576,
    closeOnBackpressureLimit: true,
    perMessageDeflate: false,
    publishToSelf: false,
    open(ws) {
      if (ws.data.reject) {
        ws.close(1008, "Authentication failed");
        return;
      }
      const id = ws.data.userId;
      ws.send(JSON.stringify({ type: "welcome", user_id: id, text: `[System] Welcome, ${id}!` }));
    },
    message: onMessage,
  },
});

console.log(JSON.stringify({ port: server.port }));
process.on("SIGTERM", () => {
  server.stop(true);
  process.exit(0);
});
