// The benchmark's minimal WebSocket client (bench/raw-ws.ts) against a real Kabar: frames of
// every length class arrive whole and in order, however the kernel splits them, and a refused
// upgrade is a clear error. (Its ping answers are checked in limits-idle.test.ts.)
import { afterAll, beforeAll, expect, test } from "bun:test";
import type { Target } from "../bench/commands.ts";
import { RawSocket } from "../bench/raw-ws.ts";
import { closeAllRaw, ensureRooms, openJoinedRaw } from "../bench/sockets.ts";
import { createUser, startServer, type TestServer } from "./helpers.ts";

let srv: TestServer;
let target: Target;
beforeAll(async () => {
  srv = await startServer({ RATE_LIMIT_CAPACITY: "1000", BOT_ENABLED: "false" });
  const u = await createUser(srv);
  target = { hosts: ["127.0.0.1"], port: srv.port, tokens: [u.token] };
  await ensureRooms(target, ["raw"], 5000);
});
afterAll(() => srv.stop());

/** Collects the next `n` text frames as strings (bounded wait). */
function frames(ws: RawSocket, n: number): Promise<string[]> {
  return new Promise((resolve, reject) => {
    const got: string[] = [];
    const timer = setTimeout(() => reject(new Error(`${got.length}/${n} frames`)), 5000);
    ws.onmessage = (buf, start, end) => {
      got.push(buf.toString("utf8", start, end));
      if (got.length === n) {
        clearTimeout(timer);
        resolve(got);
      }
    };
  });
}

test("messages of 1, 200, 10,000 characters and a burst of 300 arrive whole, in order", async () => {
  const a = await openJoinedRaw(target, 0, "raw", 5000);
  const b = await openJoinedRaw(target, 0, "raw", 5000);
  try {
    const contents = ["x", "é".repeat(200), "z".repeat(10_000)];
    for (let i = 0; i < 300; i++) contents.push(`burst ${i}:${"·".repeat(i % 150)}`);
    const atB = frames(b, contents.length);
    const atA = frames(a, contents.length);
    for (const content of contents) a.send(JSON.stringify({ type: "message", content }));
    for (const got of [await atA, await atB]) {
      const parsed = got.map((f) => JSON.parse(f) as { type: string; content: string });
      expect(parsed.filter((m) => m.type !== "message")).toEqual([]);
      expect(parsed.map((m) => m.content)).toEqual(contents);
    }
  } finally {
    closeAllRaw([a, b]);
  }
});

test("a refused upgrade and a refused token are clear errors", async () => {
  await expect(RawSocket.connect("127.0.0.1", srv.port, "/no/such/path", 5000)).rejects.toThrow(
    /upgrade refused: HTTP\/1.1 404/,
  );
  const bad = { ...target, tokens: ["not-a-token"] };
  await expect(openJoinedRaw(bad, 0, "raw", 5000)).rejects.toThrow(
    /closed while waiting for welcome/,
  );
});
