// Baseline: a bare `Bun.serve` with Bun topics speaking the subset of Kabar's protocol the
// benchmark uses. `GET /api/v1/ws?token=` (HS256 JWT, SECRET_KEY, exp required), one welcome,
// create_room (a no-op reply), join_room (subscribe to the room topic), leave_room, and message
// (one JSON frame published to the room topic, the sender included, as Kabar's JSON format).
// No user lookup, no registry: the floor that Kabar is measured against, so every step is at
// most as dear as Kabar's: the upgrade is a Bun native route (as Kabar's), the token is taken
// from the query without `new URL`, and checked as src/auth.ts checks it (a cache of header
// segments already seen, one HMAC key set up once and copied per token, constant-time compare).
// Env: PORT (0 = any), SECRET_KEY, optional RATE_LIMIT_CAPACITY / RATE_LIMIT_REFILL_PER_SECOND
// (a per-user token bucket, as Kabar's, for the noisy-neighbour scenario). Prints {"port":N}.
import { timingSafeEqual } from "node:crypto";
import type { Server, ServerWebSocket } from "bun";

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

/** HMAC-SHA256 keyed once with SECRET_KEY; each token's check runs on a copy of it. */
const KEYED = new Bun.CryptoHasher("sha256", new TextEncoder().encode(SECRET));
/** Header segments already checked (alg HS256), as src/auth.ts keeps them. */
const GOOD_HEADERS = new Set<string>();

function decodePart(part: string): Record<string, unknown> | null {
  try {
    const v: unknown = JSON.parse(Buffer.from(part, "base64url").toString("utf8"));
    return v !== null && typeof v === "object" ? (v as Record<string, unknown>) : null;
  } catch {
    return null;
  }
}

function claims(token: string | null): { sub: string; exp: number } | null {
  if (!token || token.length > 4096) return null;
  const first = token.indexOf(".");
  const last = token.lastIndexOf(".");
  if (first <= 0 || last === first || token.indexOf(".", first + 1) !== last) return null;
  const header = token.slice(0, first);
  if (!GOOD_HEADERS.has(header)) {
    if (decodePart(header)?.alg !== "HS256") return null;
    if (GOOD_HEADERS.size < 16) GOOD_HEADERS.add(header);
  }
  const body = decodePart(token.slice(first + 1, last));
  if (body === null) return null;
  const hmac = KEYED.copy();
  hmac.update(token.slice(0, last));
  const want = hmac.digest();
  const got = Buffer.from(token.slice(last + 1), "base64url");
  if (got.length !== want.length || !timingSafeEqual(got, want)) return null;
  if (typeof body.sub !== "string" || typeof body.exp !== "number") return null;
  if (body.exp * 1000 <= Date.now()) return null;
  return { sub: body.sub, exp: body.exp };
}

/** The `token` query parameter of a request URL, without parsing the URL. */
function tokenParam(url: string): string | null {
  const q = url.indexOf("?");
  if (q < 0) return null;
  let at = url.indexOf("token=", q + 1);
  while (at >= 0 && url[at - 1] !== "?" && url[at - 1] !== "&") at = url.indexOf("token=", at + 6);
  if (at < 0) return null;
  const end = url.indexOf("&", at + 6);
  const raw = url.slice(at + 6, end < 0 ? undefined : end);
  return raw.includes("%") ? decodeURIComponent(raw) : raw;
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

function upgrade(req: Request, srv: Server<Data>): Response | undefined {
  const c = claims(tokenParam(req.url));
  let bucket: Bucket | null = null;
  if (c && CAPACITY > 0) {
    bucket = buckets.get(c.sub) ?? { tokens: CAPACITY, last: Date.now() };
    buckets.set(c.sub, bucket);
  }
  const data: Data = { userId: c?.sub ?? "", room: null, bucket, reject: c === null };
  if (srv.upgrade(req, { data })) return undefined;
  return new Response("Expected a WebSocket upgrade", { status: 426 });
}

const server: Server<Data> = Bun.serve({
  hostname: "0.0.0.0",
  port: Number(process.env.PORT ?? 0),
  routes: {
    "/api/v1/ws": upgrade,
    "/api/v1/ws/health": () => Response.json({ status: "healthy" }),
  },
  fetch: () => new Response("Not Found", { status: 404 }),
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
