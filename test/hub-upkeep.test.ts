// Upkeep: a user's rate-limit bucket outlives their sockets until it is full again, then is
// evicted (no state kept per idle user); a partly used bucket is kept so reconnecting does not
// reset the limit.
import { afterAll, beforeAll, expect, test } from "bun:test";
import { Client, createUser, startServer, type TestServer } from "./helpers.ts";

let srv: TestServer;
beforeAll(async () => {
  srv = await startServer({ RATE_LIMIT_CAPACITY: "10", RATE_LIMIT_REFILL_PER_SECOND: "1" });
});
afterAll(() => srv.stop());

test("idle buckets are evicted once full; used ones and live users' are kept", async () => {
  const hub = srv.kabar.hub;
  const idle = await createUser(srv);
  const live = await createUser(srv);
  const a = await Client.connect(srv, idle.token);
  const b = await Client.connect(srv, live.token);
  for (let i = 0; i < 5; i++) await a.ask({ type: "list_rooms" });
  a.close();
  await a.waitClose();
  const before = hub.slotCount;
  expect(before).toBeGreaterThanOrEqual(2);
  // 5 tokens used, refill 1/s: 2 s later the bucket is still not full, so it stays.
  hub.maintain(Date.now() + 2_000);
  expect(hub.slotCount).toBe(before);
  // Far enough ahead for the bucket to be full, and past the 10 s eviction period.
  hub.maintain(Date.now() + 60_000);
  expect(hub.slotCount).toBe(before - 1);
  expect(hub.isOnline(live.id)).toBe(true);
  expect(JSON.parse(await b.ask({ type: "list_rooms" })).type).toBe("rooms");
  b.close();
});
