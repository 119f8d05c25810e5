// Upkeep: a user's rate-limit bucket outlives their sockets until it is full again, then is
// evicted (no state kept per idle user); a partly used bucket is kept so reconnecting does not
// reset the limit. The upkeep runs at chosen times (`hub.maintain(now)`), not on the real timer.
import { afterEach, expect, setDefaultTimeout, test } from "bun:test";
import { Client, createUser, startServer, type TestServer } from "./helpers.ts";

// A server per test and argon2 logins, on a machine that may be busy: generous limits.
setDefaultTimeout(30_000);

const servers: TestServer[] = [];
afterEach(async () => {
  for (const s of servers.splice(0)) await s.stop();
});
/** A server of its own per test: `maintain(now)` with future times moves the hub's clocks on. */
async function server(env: Record<string, string>): Promise<TestServer> {
  const srv = await startServer(env);
  servers.push(srv);
  return srv;
}

/** Sends `count` list_rooms frames at once; how many were answered (the rest refused). */
async function burst(c: Client, count: number): Promise<{ accepted: number; refused: string[] }> {
  for (let i = 0; i < count; i++) c.send({ type: "list_rooms" });
  const frames = (await c.take(count, 5000)).map((f) => JSON.parse(f) as Record<string, unknown>);
  const refused = frames.filter((f) => f.type !== "rooms").map((f) => String(f.code));
  return { accepted: count - refused.length, refused };
}

async function disconnect(srv: TestServer, c: Client, userId: string): Promise<void> {
  c.close();
  await c.waitClose();
  for (let i = 0; i < 100 && srv.kabar.hub.isOnline(userId); i++) await Bun.sleep(20);
  expect(srv.kabar.hub.isOnline(userId)).toBe(false);
}

test("idle buckets are evicted once full; partly used ones and live users' are kept", async () => {
  // Capacity 10, 0.1 token/s: 5 used tokens take 50 s to come back.
  const srv = await server({ RATE_LIMIT_CAPACITY: "10", RATE_LIMIT_REFILL_PER_SECOND: "0.1" });
  const hub = srv.kabar.hub;
  // Only the maintain() calls below run the upkeep; the real timer would race them.
  hub.stop();
  const [used, unused, live] = await Promise.all([
    createUser(srv),
    createUser(srv),
    createUser(srv),
  ]);
  const u = await Client.connect(srv, used.token);
  const n = await Client.connect(srv, unused.token);
  const l = await Client.connect(srv, live.token);
  expect((await burst(u, 5)).accepted).toBe(5);
  expect((await burst(l, 5)).accepted).toBe(5);
  await disconnect(srv, u, used.id);
  await disconnect(srv, n, unused.id);
  // No WebSocket of any other user on this server.
  expect(hub.slotCount).toBe(3);

  // 12 s on: eviction is due (every 10 s, and it has not run since the timer stopped), and the
  // used bucket holds about 5 + 1.2 tokens. Only the full bucket of the idle user goes.
  const t0 = Date.now();
  hub.maintain(t0 + 12_000);
  expect(hub.slotCount).toBe(2);
  expect(hub.isOnline(live.id)).toBe(true);

  // Reconnecting finds the kept bucket (about 6.2 tokens), not a fresh one (10).
  const u2 = await Client.connect(srv, used.token);
  const again = await burst(u2, 10);
  expect(again.accepted).toBeGreaterThanOrEqual(6);
  expect(again.accepted).toBeLessThanOrEqual(7);
  expect(again.refused.every((code) => code === "rate_limited")).toBe(true);
  await disconnect(srv, u2, used.id);

  // Still not full 12 s later (the bucket is empty now, 1.2 tokens back): kept.
  hub.maintain(t0 + 24_000);
  expect(hub.slotCount).toBe(2);
  // Far enough on for it to be full again: evicted. The live user's bucket (5 used) is kept.
  hub.maintain(t0 + 200_000);
  expect(hub.slotCount).toBe(1);
  expect(hub.isOnline(live.id)).toBe(true);
  expect(JSON.parse(await l.ask({ type: "list_rooms" })).type).toBe("rooms");
  l.close();
});

test("reconnecting does not refill the bucket, even after the upkeep ran meanwhile", async () => {
  // Capacity 4, one token per 100 s; the hub's own timer keeps running.
  const srv = await server({ RATE_LIMIT_CAPACITY: "4", RATE_LIMIT_REFILL_PER_SECOND: "0.01" });
  const hub = srv.kabar.hub;
  const user = await createUser(srv);
  const first = await Client.connect(srv, user.token);
  expect(await burst(first, 3)).toEqual({ accepted: 3, refused: [] });
  await disconnect(srv, first, user.id);

  // The upkeep runs while the user is away (11 s on: past its 10 s eviction period).
  hub.maintain(Date.now() + 11_000);

  // Back with two sockets: one token left between them, then rate_limited on both.
  const a = await Client.connect(srv, user.token);
  const b = await Client.connect(srv, user.token, "text");
  expect(JSON.parse(await a.ask({ type: "list_rooms" })).type).toBe("rooms");
  const refused = JSON.parse(await a.ask({ type: "list_rooms" })) as Record<string, unknown>;
  expect(refused).toMatchObject({ type: "error", code: "rate_limited" });
  // About 89 s until the next token (0.1 of it back after the 11 s): any whole number up to 100.
  const wait = Number(
    /^\[System\] Rate limit exceeded\. Try again in (\d+)s\.$/.exec(String(refused.text))?.[1],
  );
  expect(wait).toBeGreaterThanOrEqual(1);
  expect(wait).toBeLessThanOrEqual(100);
  expect(await b.ask({ type: "list_rooms" })).toMatch(/^\[System\] Rate limit exceeded\. /);
  a.close();
  b.close();
});
