// Client-side WebSocket steps shared by the load scenarios: connect with a token, read the
// welcome, create and join rooms. Every wait has a timeout.
import type { Target } from "./commands.ts";
import { RawSocket } from "./raw-ws.ts";

/** Socket i: hosts[i % hosts], tokens[i % tokens] (so with as many rooms as users, one user per room). */
export function wsUrl(target: Target, i: number): string {
  const host = target.hosts[i % target.hosts.length];
  const token = target.tokens[i % target.tokens.length];
  return `ws://${host}:${target.port}/api/v1/ws?token=${token}`;
}

/** Socket i's destination address, port and path (as `wsUrl`; `Target.ports`), for the raw client. */
function wsTarget(target: Target, i: number): { host: string; port: number; path: string } {
  const host = target.hosts[i % target.hosts.length] ?? "127.0.0.1";
  const token = target.tokens[i % target.tokens.length];
  const ports = target.ports ?? [];
  const port =
    ports.length === 0
      ? target.port
      : (ports[Math.floor(i / Math.max(1, target.portStride ?? 1)) % ports.length] ?? target.port);
  return { host, port, path: `/api/v1/ws?token=${token}` };
}

/** The `type` of a server JSON frame, without parsing the whole frame. */
export function frameType(frame: string): string {
  const k = frame.indexOf('"type":"');
  if (k < 0) return "";
  return frame.slice(k + 8, frame.indexOf('"', k + 8));
}

const short = (s: string) => (s.length > 120 ? `${s.slice(0, 120)}…` : s);

/**
 * Opens a socket, waits for `welcome`, sends `join_room` (when `room` is given) and waits for
 * `room_joined`. Resolves with the open socket; rejects with a reason on close, error or timeout.
 */
export function openJoined(
  url: string,
  room: string | null,
  timeoutMs: number,
): Promise<WebSocket> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url);
    let stage: "welcome" | "join" | "done" = "welcome";
    const fail = (why: string) => {
      if (stage === "done") return;
      stage = "done";
      clearTimeout(timer);
      ws.onmessage = null;
      ws.onclose = null;
      ws.onerror = null;
      try {
        ws.close();
      } catch {}
      reject(new Error(why));
    };
    const timer = setTimeout(() => fail(`timeout waiting for ${stage}`), timeoutMs);
    ws.onmessage = (e) => {
      const frame = String(e.data);
      const type = frameType(frame);
      if (stage === "welcome") {
        if (type !== "welcome") return fail(`expected welcome, got ${short(frame)}`);
        if (room === null) return done();
        stage = "join";
        ws.send(JSON.stringify({ type: "join_room", room_name: room }));
      } else if (stage === "join") {
        if (type === "room_joined") return done();
        if (type === "error") fail(`join ${room}: ${short(frame)}`);
      }
    };
    ws.onclose = (e) => fail(`closed ${e.code} ${e.reason}`);
    ws.onerror = () => fail("socket error");
    function done() {
      stage = "done";
      clearTimeout(timer);
      ws.onmessage = null;
      ws.onclose = null;
      ws.onerror = null;
      resolve(ws);
    }
  });
}

/**
 * `openJoined` with the raw client (bench/raw-ws.ts): socket i of `target`, welcome, then
 * `join_room` and `room_joined`. The group sockets of the fan-out scenarios use this client.
 */
export async function openJoinedRaw(
  target: Target,
  i: number,
  room: string,
  timeoutMs: number,
): Promise<RawSocket> {
  const { host, port, path } = wsTarget(target, i);
  const deadline = performance.now() + timeoutMs;
  const ws = await RawSocket.connect(host, port, path, timeoutMs);
  return new Promise((resolve, reject) => {
    let stage: "welcome" | "join" | "done" = "welcome";
    const finish = (why: string | null) => {
      if (stage === "done") return;
      stage = "done";
      clearTimeout(timer);
      ws.onmessage = null;
      ws.onclose = null;
      if (why === null) return resolve(ws);
      ws.close();
      reject(new Error(why));
    };
    const timer = setTimeout(
      () => finish(`timeout waiting for ${stage}`),
      Math.max(1, deadline - performance.now()),
    );
    ws.onclose = () => finish(`closed while waiting for ${stage}`);
    ws.onmessage = (buf, start, end) => {
      const frame = buf.toString("utf8", start, end);
      const type = frameType(frame);
      if (stage === "welcome") {
        if (type !== "welcome") return finish(`expected welcome, got ${short(frame)}`);
        stage = "join";
        ws.send(JSON.stringify({ type: "join_room", room_name: room }));
      } else if (type === "room_joined") finish(null);
      else if (type === "error") finish(`join ${room}: ${short(frame)}`);
    };
  });
}

/** Closes raw sockets (a close frame, then the TCP connection ends); returns how many. */
export function closeAllRaw(sockets: RawSocket[]): number {
  let closed = 0;
  for (const ws of sockets) {
    ws.onclose = null;
    if (!ws.closed) ws.close();
    closed++;
  }
  return closed;
}

/**
 * Rooms one socket creates: under Kabar's default MAX_ROOMS_PER_USER (50) and its default rate
 * limit (a bucket of 100 frames per user), so the default-settings row can create its rooms.
 */
export const ROOMS_PER_SOCKET = 40;

/**
 * Creates rooms, ROOMS_PER_SOCKET at a time through socket k of `target` (so with one token per
 * user, each chunk is another user's); `room_exists` counts as done.
 */
export async function ensureRooms(
  target: Target,
  rooms: string[],
  timeoutMs: number,
): Promise<void> {
  const chunks: string[][] = [];
  for (let k = 0; k < rooms.length; k += ROOMS_PER_SOCKET)
    chunks.push(rooms.slice(k, k + ROOMS_PER_SOCKET));
  await Promise.all(chunks.map((chunk, k) => createRooms(wsUrl(target, k), chunk, timeoutMs)));
}

async function createRooms(url: string, rooms: string[], timeoutMs: number): Promise<void> {
  if (rooms.length === 0) return;
  const ws = await openJoined(url, null, timeoutMs);
  try {
    await new Promise<void>((resolve, reject) => {
      let left = rooms.length;
      const timer = setTimeout(
        () => reject(new Error(`room creation: ${left} unanswered`)),
        timeoutMs,
      );
      ws.onmessage = (e) => {
        const frame = String(e.data);
        const type = frameType(frame);
        const ok = type === "room_created" || frame.includes('"code":"room_exists"');
        if (!ok) {
          clearTimeout(timer);
          reject(new Error(`create_room: ${short(frame)}`));
          return;
        }
        if (--left === 0) {
          clearTimeout(timer);
          resolve();
        }
      };
      ws.onclose = (e) => reject(new Error(`setup socket closed ${e.code} ${e.reason}`));
      for (const room of rooms) ws.send(JSON.stringify({ type: "create_room", room_name: room }));
    });
  } finally {
    ws.onclose = null;
    ws.close();
  }
}

/** Closes sockets and waits for their close events (bounded by `timeoutMs`). */
export async function closeAll(sockets: WebSocket[], timeoutMs: number): Promise<number> {
  let closed = 0;
  const waits = sockets.map(
    (ws) =>
      new Promise<void>((resolve) => {
        if (ws.readyState === WebSocket.CLOSED) {
          closed++;
          return resolve();
        }
        ws.onmessage = null;
        ws.onclose = () => {
          closed++;
          resolve();
        };
        ws.close();
      }),
  );
  await Promise.race([Promise.all(waits), Bun.sleep(timeoutMs)]);
  return closed;
}

/** Runs `task(i)` for i in [0, count) with at most `concurrency` running at once. */
export async function pool(
  count: number,
  concurrency: number,
  task: (i: number) => Promise<void>,
): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < count) await task(next++);
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, count) }, worker));
}
