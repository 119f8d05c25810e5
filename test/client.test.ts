// The typed client (src/client) against a real server: typed commands and events, `for await`,
// a dropped socket that reconnects and recovers the room with `since` (no gap, no duplicate),
// a real server restart it survives by itself, and a deactivation it does not retry.
import { afterAll, beforeAll, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type ConnectionState, type EventOf, KabarClient } from "../src/client/client.ts";
import { adminUser, createUser, freePort, startServer, type TestServer } from "./helpers.ts";

let srv: TestServer;
let port = 0;
let dataDir = "";
const clients: KabarClient[] = [];

const start = async () => {
  srv = await startServer({ PORT: String(port), DATA_DIR: dataDir, BOT_ENABLED: "false" });
};

beforeAll(async () => {
  port = await freePort();
  dataDir = mkdtempSync(join(tmpdir(), "kabar-client-"));
  await start();
});
afterAll(async () => {
  for (const c of clients) c.close();
  await srv.stop();
  rmSync(dataDir, { recursive: true, force: true });
});

async function connect(tok: string, presence = false): Promise<KabarClient> {
  const c = await KabarClient.connect({ url: srv.ws, token: tok, presence, minDelayMs: 50 });
  clients.push(c);
  return c;
}

/** Resolves once the client's state is `state` (now or later). */
function reaches(c: KabarClient, state: ConnectionState["state"], ms = 10_000) {
  return new Promise<ConnectionState>((resolve, reject) => {
    if (c.state.state === state) return resolve(c.state);
    const timer = setTimeout(() => reject(new Error(`not ${state} within ${ms} ms`)), ms);
    const off = c.onState((s) => {
      if (s.state !== state) return;
      off();
      clearTimeout(timer);
      resolve(s);
    });
  });
}

test("typed commands in, typed events out, also as an async iterator", async () => {
  const user = await createUser(srv);
  const c = await connect(user.token);
  expect(c.userId).toBe(user.id);
  expect(c.send({ type: "create_room", room_name: "typed" })).toBe(true);
  const created = await c.next("room_created");
  expect(created.room).toBe("typed");
  c.send({ type: "join_room", room_name: "typed" });
  const joined: EventOf<"room_joined"> = await c.next("room_joined");
  expect(joined).toMatchObject({ room: "typed", members: 1, seq: 0 });
  await c.next("room_update");
  expect(c.room).toBe("typed");

  const seen: string[] = [];
  const reading = (async () => {
    for await (const e of c.events()) {
      if (e.type !== "message") continue;
      seen.push(e.content);
      if (seen.length === 3) break;
    }
  })();
  for (const content of ["one", "two", "three"]) c.send({ type: "message", content });
  await reading;
  expect(seen).toEqual(["one", "two", "three"]);
  expect(c.position).toEqual({ epoch: joined.epoch, seq: 3 });

  c.send({ type: "join_room", room_name: "no-such-room" });
  expect((await c.next("error")).code).toBe("room_not_found");
  // An error for another room does not make the client forget the room it is in.
  expect(c.room).toBe("typed");
});

test("a dropped socket reconnects with backoff and recovers what it missed", async () => {
  const a = await createUser(srv);
  const b = await createUser(srv);
  const ca = await connect(a.token);
  const cb = await connect(b.token, true);
  ca.send({ type: "create_room", room_name: "recover" });
  await ca.next("room_created");
  ca.send({ type: "join_room", room_name: "recover" });
  await ca.next("room_update");
  cb.send({ type: "join_room", room_name: "recover", presence: true });
  await cb.next("room_update");
  ca.send({ type: "message", content: "before" });
  expect((await cb.next("message")).content).toBe("before");

  const states: string[] = [];
  cb.onState((s) => states.push(s.state));
  // While b is away, a goes on writing.
  const rejoined = cb.next("room_joined", 10_000);
  cb.drop();
  await reaches(cb, "waiting");
  for (const content of ["while away 1", "while away 2"]) ca.send({ type: "message", content });
  await ca.next("message");
  await ca.next("message");
  const replay: string[] = [];
  const offMsg = cb.on("message", (e) => replay.push(e.content));
  expect(await rejoined).toMatchObject({ room: "recover", recovered: true });
  ca.send({ type: "message", content: "live" });
  await ca.next("message");
  for (let i = 0; i < 100 && replay.length < 3; i++) await Bun.sleep(20);
  offMsg();
  expect(replay).toEqual(["while away 1", "while away 2", "live"]);
  expect(states.slice(0, 3)).toEqual(["waiting", "connecting", "open"]);
  expect(cb.room).toBe("recover");
});

test("a real server restart: the client comes back by itself", async () => {
  const user = await createUser(srv);
  const c = await connect(user.token);
  c.send({ type: "create_room", room_name: "restart" });
  await c.next("room_created");
  c.send({ type: "join_room", room_name: "restart" });
  await c.next("room_update");

  await srv.kabar.stop(1000);
  rmSync(srv.dir, { recursive: true, force: true });
  const lost = await reaches(c, "waiting");
  expect(lost).toMatchObject({ state: "waiting", code: 1001 });
  // Backoff: attempts against a closed port keep waiting, each a little longer (up to a cap).
  await Bun.sleep(400);
  expect(c.state.state === "waiting" || c.state.state === "connecting").toBe(true);
  await start();
  await reaches(c, "open", 15_000);
  // The room lived in the old process: the re-join says so and the client is out of it.
  expect((await c.next("error")).code).toBe("room_not_found");
  expect(c.room).toBeNull();
  c.send({ type: "list_rooms" });
  expect((await c.next("rooms")).rooms).toEqual([]);
}, 30_000);

test("deactivation (1008) closes for good: no reconnect", async () => {
  const admin = await adminUser(srv);
  const user = await createUser(srv);
  const c = await connect(user.token);
  const res = await fetch(`${srv.api}/users/${user.id}`, {
    method: "PATCH",
    headers: { authorization: `Bearer ${admin.token}`, "content-type": "application/json" },
    body: JSON.stringify({ is_active: false }),
  });
  expect(res.status).toBe(200);
  expect(await reaches(c, "closed", 5000)).toEqual({
    state: "closed",
    code: 1008,
    reason: "User deactivated",
  });
  await Bun.sleep(300);
  expect(c.state.state).toBe("closed");
  // A refused token rejects connect() instead of retrying.
  await expect(
    KabarClient.connect({ url: srv.ws, token: user.token, minDelayMs: 50 }),
  ).rejects.toThrow("1008 Authentication failed");
});

test("a URL no socket can be made from: connect() rejects, no retry loop", async () => {
  await expect(KabarClient.connect({ url: "not a url", token: "x" })).rejects.toThrow(
    "cannot connect",
  );
});
