// What the RoomRegistry contract cannot see of the Redis registry: its keys (no stale index
// entries), one round trip per join/leave, the NOSCRIPT fallback, and Redis going away.
import { afterAll, afterEach, beforeAll, describe, expect, spyOn, test } from "bun:test";
import type { RedisClient } from "bun";
import { connectRedis } from "../src/cluster/redis.ts";
import { RegistryUnavailableError } from "../src/rooms/registry.ts";
import { freshPrefix, type OwnClientRegistry, openRedisRegistry } from "./redis-rooms.ts";
import { type RedisServer, redisAvailable, startRedis } from "./redis-server.ts";

const LIMITS = { maxRooms: 100, maxRoomsPerUser: 10 };
const ALICE = "11111111-1111-4111-8111-111111111111";

const RUN = redisAvailable();

describe.if(RUN)("RedisRoomRegistry", () => {
  let redis: RedisServer;
  let admin: RedisClient;
  let open: OwnClientRegistry[] = [];
  const make = async (prefix = freshPrefix(), options?: { timeoutMs: number }) => {
    const r = await openRedisRegistry(redis.url, LIMITS, prefix, options);
    open.push(r);
    return r;
  };
  const keys = async (prefix: string): Promise<string[]> => {
    const found: unknown = await admin.send("KEYS", [`${prefix}*`]);
    return (found as string[]).map((k) => k.slice(prefix.length)).sort();
  };
  /** Calls per command since the last CONFIG RESETSTAT, without CONFIG and INFO themselves. */
  const commandStats = async (): Promise<Record<string, number>> => {
    const info: unknown = await admin.send("INFO", ["commandstats"]);
    const out: Record<string, number> = {};
    for (const m of String(info).matchAll(/^cmdstat_([a-z|]+):calls=(\d+)/gm)) {
      const [, name, calls] = m;
      if (name && calls && !/^(config|info)/.test(name)) out[name] = Number(calls);
    }
    return out;
  };
  const reconnectAdmin = async () => {
    admin.close();
    admin = await connectRedis(redis.url);
  };

  beforeAll(async () => {
    redis = await startRedis();
    admin = await connectRedis(redis.url);
  });
  afterEach(async () => {
    for (const r of open) await r.dispose();
    open = [];
  });
  afterAll(async () => {
    admin?.close();
    await redis?.stop();
  });

  test("key layout; close, sweep, leave and purgeNode leave no stale entries", async () => {
    const p = freshPrefix();
    const r = await make(p);
    await r.create("a", ALICE, 1);
    await r.create("kamar-é漢", ALICE, 2);
    await r.join("a", "n1:1", 3);
    await r.join("kamar-é漢", "n1:1", 3);
    await r.join("kamar-é漢", "n2:7", 3);
    await r.join("a", "loose", 3);
    expect(await keys(p)).toEqual([
      "creators",
      "members:a",
      "members:kamar-é漢",
      "node:n1",
      "node:n2",
      "room:a",
      "room:kamar-é漢",
      "rooms",
      "seq",
    ]);
    const index = (await admin.send("SMEMBERS", [`${p}node:n1`])) as string[];
    expect(index.toSorted()).toEqual(
      ["1:an1:1", `${Buffer.byteLength("kamar-é漢")}:kamar-é漢n1:1`].toSorted(),
    );
    expect(await admin.send("HGETALL", [`${p}room:a`])).toEqual({
      creator: ALICE,
      createdAt: "1",
    });
    expect(await admin.send("HGET", [`${p}creators`, ALICE])).toBe("2");
    // The byte-length entry encoding survives multi-byte names: the purge finds the room.
    expect(await r.purgeNode("n2", 4)).toBe(1);
    expect(await keys(p)).not.toContain("node:n2");
    expect((await r.get("kamar-é漢"))?.members).toBe(1);
    await r.leave("kamar-é漢", "n1:1", 5);
    expect(await admin.send("ZRANGE", [`${p}empty`, "0", "-1", "WITHSCORES"])).toEqual([
      ["kamar-é漢", 5],
    ]);
    expect(await r.sweep(5, 0)).toEqual(["kamar-é漢"]);
    expect(await r.close("a", ALICE)).toMatchObject({ ok: true, room: { members: 2 } });
    expect(await keys(p)).toEqual(["seq"]);
  });

  test("purgeNode matches the whole node id, also one with ':' in it", async () => {
    const r = await make();
    await r.create("a", ALICE, 1);
    for (const m of ["x:y:1", "x:y:2", "x:z:1", "x:1", "x", "x:yy:1"]) await r.join("a", m, 2);
    expect(await r.purgeNode("x:y", 3)).toBe(2);
    expect(await r.purgeNode("x", 3)).toBe(3);
    expect((await r.get("a"))?.members).toBe(1);
    expect(await r.purgeNode("x", 3)).toBe(0);
  });

  test("join and leave are one EVALSHA each; after SCRIPT FLUSH one EVAL, then EVALSHA", async () => {
    const r = await make();
    await r.create("a", ALICE, 1);
    const sent = spyOn(r.redis, "send");
    const commands = () => sent.mock.calls.map(([command]) => command);
    await admin.send("CONFIG", ["RESETSTAT"]);
    await r.join("a", "n1:1", 2);
    await r.leave("a", "n1:1", 3);
    expect(commands()).toEqual(["EVALSHA", "EVALSHA"]);
    expect(await commandStats()).toMatchObject({ evalsha: 2 });
    expect(await commandStats()).not.toHaveProperty("eval");
    await admin.send("SCRIPT", ["FLUSH"]);
    sent.mockClear();
    expect((await r.join("a", "n1:1", 4))?.members).toBe(1);
    expect((await r.join("a", "n1:2", 4))?.members).toBe(2);
    expect(commands()).toEqual(["EVALSHA", "EVAL", "EVALSHA"]);
    sent.mockRestore();
  });

  test("a silent Redis: calls reject after timeoutMs", async () => {
    const r = await make(freshPrefix(), { timeoutMs: 200 });
    await r.create("a", ALICE, 1);
    await admin.send("CLIENT", ["PAUSE", "500", "ALL"]);
    const t0 = performance.now();
    const err = await r.get("a").catch((e: unknown) => e);
    expect(err).toBeInstanceOf(RegistryUnavailableError);
    expect(performance.now() - t0).toBeLessThan(900);
    await Bun.sleep(400);
    expect((await r.get("a"))?.name).toBe("a");
  });

  test("Redis killed: calls reject at once; after a restart they work again", async () => {
    const r = await make();
    await r.create("a", ALICE, 1);
    await redis.kill();
    for (const call of [
      () => r.create("b", ALICE, 2),
      () => r.join("a", "n1:1", 2),
      () => r.leave("a", "n1:1", 2),
      () => r.list(),
      () => r.sweep(10, 1),
      () => r.purgeNode("n1", 2),
    ]) {
      const t0 = performance.now();
      const err = await call().catch((e: unknown) => e);
      expect(err).toBeInstanceOf(RegistryUnavailableError);
      expect(performance.now() - t0).toBeLessThan(1_000);
    }
    await redis.restart();
    const deadline = Date.now() + 5_000;
    let rooms: unknown;
    while (Date.now() < deadline) {
      rooms = await r.list().catch((e: unknown) => e);
      if (Array.isArray(rooms)) break;
      await Bun.sleep(100);
    }
    // Nothing is persisted: the restarted Redis is empty, and its script cache too (EVAL).
    expect(rooms).toEqual([]);
    expect((await r.create("a", ALICE, 3)).ok).toBe(true);
    expect((await r.join("a", "n1:1", 4))?.members).toBe(1);
    await reconnectAdmin();
  });
});

if (!RUN) test.skip("RedisRoomRegistry (redis-server not found)", () => {});
