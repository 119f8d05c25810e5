// GET /api/v1/ws/internals on a real server: superusers only (401 without a token, 403 for a
// user), this process's memory and open fds, and the entry counts of the node's maps and sets —
// which come back to where they were once a socket has joined a room and left (the soak,
// bench/soak.ts, reads the same answer for 10 minutes).
import { afterAll, beforeAll, expect, test } from "bun:test";
import { adminUser, Client, createUser, startServer, type TestServer } from "./helpers.ts";

let srv: TestServer;
beforeAll(async () => {
  srv = await startServer({ BOT_ENABLED: "false" });
});
afterAll(() => srv.stop());

type Internals = Record<string, Record<string, number | null>> & { node: unknown };

async function internals(tok: string): Promise<Response> {
  return fetch(`${srv.api}/ws/internals`, { headers: { authorization: `Bearer ${tok}` } });
}

async function sizes(tok: string): Promise<Internals> {
  const res = await internals(tok);
  expect(res.status).toBe(200);
  return (await res.json()) as Internals;
}

test("only a superuser reads the internals; others get a clear error", async () => {
  const none = await fetch(`${srv.api}/ws/internals`);
  expect(none.status).toBe(401);
  expect(await none.json()).toEqual({ detail: "Not authenticated" });
  const user = await createUser(srv);
  const res = await internals(user.token);
  expect(res.status).toBe(403);
  expect(await res.json()).toEqual({ detail: "The user doesn't have enough privileges" });
});

test("sizes follow a socket in and out of a room and come back to where they were", async () => {
  const admin = await adminUser(srv);
  const user = await createUser(srv);
  const before = await sizes(admin.token);
  expect(typeof before.node).toBe("string");
  expect(before.process?.rss_bytes).toBeGreaterThan(1_000_000);
  expect(before.process?.heap_used_bytes).toBeGreaterThan(0);
  if (process.platform === "linux") expect(before.process?.open_fds).toBeGreaterThan(2);
  expect(before.hub).toMatchObject({
    connections: 0,
    local_rooms: 0,
    local_members: 0,
    joining_rooms: 0,
    joining_sockets: 0,
    after_echo: 0,
    heard_rooms: 0,
    slicer_rooms: 0,
    slices_queued: 0,
  });
  // Upgrades waiting for a turn (WS_UPGRADES_PER_TURN), 429s held (CONNECT_REFUSAL_DELAY_MS),
  // connect-limit buckets (CONNECT_RATE_PER_IP).
  expect(before.upgrades).toMatchObject({ waiting: 0, refusals_held: 0 });
  expect(before.upgrades?.connect_buckets).toBeGreaterThanOrEqual(0);
  expect(before.registry).toMatchObject({ rooms: 0, members: 0 });
  expect(before.presence).toMatchObject({ rooms: 0, members: 0 });
  expect(before.history).toMatchObject({ rooms: 0, messages: 0 });
  expect(before.users?.cached_users).toBeGreaterThanOrEqual(1);

  const c = await Client.connect(srv, user.token);
  c.send({ type: "create_room", room_name: "sizes" });
  await c.next();
  c.send({ type: "join_room", room_name: "sizes", presence: true });
  await c.take(2);
  c.send({ type: "message", content: "one" });
  await c.next();
  const inside = await sizes(admin.token);
  expect(inside.hub).toMatchObject({
    connections: 1,
    user_slots: 1,
    local_rooms: 1,
    local_members: 1,
  });
  expect(inside.registry).toMatchObject({ rooms: 1, members: 1, creators: 1 });
  expect(inside.presence).toMatchObject({ rooms: 1, members: 1 });
  expect(inside.history).toMatchObject({ rooms: 1, messages: 1 });

  c.send({ type: "close_room", room_name: "sizes" });
  await c.next();
  c.ws.close();
  await c.closed;
  // The close is handled on the server's next turn; the user's idle slot goes at the next upkeep.
  let after = await sizes(admin.token);
  for (let i = 0; i < 100 && after.hub?.connections !== 0; i++) {
    await Bun.sleep(20);
    after = await sizes(admin.token);
  }
  srv.kabar.hub.maintain(Date.now() + 60_000);
  after = await sizes(admin.token);
  expect(after.hub).toEqual(before.hub);
  expect(after.registry).toEqual(before.registry);
  expect(after.presence).toEqual(before.presence);
  // The history's eviction queue is compacted lazily (at most 2 × messages + 1025 entries).
  expect(after.history).toMatchObject({ rooms: 0, messages: 0 });
  expect(after.history?.queued).toBeLessThanOrEqual(1025);
});
