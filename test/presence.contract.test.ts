// Runs the Presence contract against memory and Redis (a redis-server of the test's own), then
// what the contract cannot see of the Redis store: its keys (in step, nothing left behind), one
// EVALSHA per call, and Redis going away (killed, or silent).
import { describe, expect, spyOn, test } from "bun:test";
import type { RedisClient } from "bun";
import { BrokerUnavailableError } from "../src/cluster/broker.ts";
import { MemoryPresence } from "../src/presence/memory.ts";
import { RedisPresence } from "../src/presence/redis.ts";
import { presenceContract } from "./contract/presence.ts";
import { redisAvailable, sharedRedis } from "./redis-server.ts";

const ALICE = "11111111-1111-4111-8111-111111111111";
const BOB = "22222222-2222-4222-8222-222222222222";

const RUN = redisAvailable();
const freshPrefix = () => `p${crypto.randomUUID().slice(0, 8)}:`;

presenceContract("memory", async () => {
  const shared = new MemoryPresence();
  return { open: async () => shared };
});

describe.skipIf(!RUN)("redis", () => {
  const redis = sharedRedis();
  /** A store on its own connection (one node's view), scripts loaded. */
  const open = async (prefix: string, timeoutMs?: number) => {
    const client = await redis.client();
    const presence = new RedisPresence(client, prefix, timeoutMs);
    await presence.load();
    return { client, presence };
  };
  let admin: RedisClient | undefined;
  const keys = async (prefix: string): Promise<string[]> => {
    admin ??= await redis.client();
    const found = (await admin.send("KEYS", [`${prefix}*`])) as string[];
    return found.map((k) => k.slice(prefix.length)).sort();
  };

  presenceContract("redis", async () => {
    const prefix = freshPrefix();
    return { open: async () => (await open(prefix)).presence };
  });

  test("key layout: members, per-user counts and the per-node index, kept in step", async () => {
    const p = freshPrefix();
    const { client: admin, presence: a } = await open(p);
    const { presence: b } = await open(p);
    await a.add("a:b", ALICE, "n1:1");
    await b.add("a:b", ALICE, "n2:1");
    await a.add("kamar-é漢", BOB, "n1:2");
    await a.add("a:b", BOB, "loose");
    expect(await keys(p)).toEqual([
      "pm:a:b",
      "pm:kamar-é漢",
      "pn:n1",
      "pn:n2",
      "pu:a:b",
      "pu:kamar-é漢",
    ]);
    expect(await admin.send("HGETALL", [`${p}pm:a:b`])).toEqual({
      "n1:1": ALICE,
      "n2:1": ALICE,
      loose: BOB,
    });
    expect(await admin.send("HGETALL", [`${p}pu:a:b`])).toEqual({ [ALICE]: "2", [BOB]: "1" });
    const index = (await admin.send("SMEMBERS", [`${p}pn:n1`])) as string[];
    expect(index.toSorted()).toEqual(
      ["3:a:bn1:1", `${Buffer.byteLength("kamar-é漢")}:kamar-é漢n1:2`].toSorted(),
    );
    // Each way out takes its index entry with it.
    expect(await a.remove("a:b", ALICE, "n1:1")).toBe(false);
    expect(await admin.send("SMEMBERS", [`${p}pn:n1`])).toEqual([
      `${Buffer.byteLength("kamar-é漢")}:kamar-é漢n1:2`,
    ]);
    expect(await admin.send("HGETALL", [`${p}pu:a:b`])).toEqual({ [ALICE]: "1", [BOB]: "1" });
    expect(await b.purgeNode("n2")).toEqual([{ room: "a:b", user_id: ALICE }]);
    expect(await keys(p)).toEqual(["pm:a:b", "pm:kamar-é漢", "pn:n1", "pu:a:b", "pu:kamar-é漢"]);
    await b.drop("kamar-é漢");
    expect(await keys(p)).toEqual(["pm:a:b", "pu:a:b"]);
    expect(await a.remove("a:b", BOB, "loose")).toBe(true);
    expect(await keys(p)).toEqual([]);
  });

  test("no keys are left once everything is removed, whichever way it went", async () => {
    const p = freshPrefix();
    const { presence: a } = await open(p);
    const { presence: b } = await open(p);
    const fill = async () => {
      for (let i = 0; i < 30; i++) {
        const node = i % 2 ? a : b;
        await node.add(`room:${i % 3}`, `u${i % 7}`, `${i % 2 ? "n1" : "n2"}:${i}`);
      }
    };
    const ways: Array<() => Promise<unknown>> = [
      // remove, every socket
      () =>
        Promise.all(
          Array.from({ length: 30 }, (_, i) =>
            (i % 2 ? a : b).remove(`room:${i % 3}`, `u${i % 7}`, `${i % 2 ? "n1" : "n2"}:${i}`),
          ),
        ),
      // purge both nodes
      () => Promise.all([a.purgeNode("n1"), b.purgeNode("n2")]),
      // drop every room
      () => Promise.all([0, 1, 2].map((r) => a.drop(`room:${r}`))),
      // a bit of each
      async () => {
        await a.remove("room:0", "u0", "n2:0");
        await a.remove("room:1", "u1", "n1:1");
        await b.drop("room:2");
        await a.purgeNode("n2");
        await b.purgeNode("n1");
      },
    ];
    for (const way of ways) {
      await fill();
      expect((await keys(p)).length).toBe(8); // 3 × pm, 3 × pu, 2 × pn
      await way();
      expect(await keys(p)).toEqual([]);
    }
  });

  test("every call is one EVALSHA; after SCRIPT FLUSH one EVAL, then EVALSHA again", async () => {
    const { client, presence } = await open(freshPrefix());
    const sent = spyOn(client, "send");
    const commands = () => sent.mock.calls.map(([command]) => command);
    await presence.add("r", ALICE, "n1:1");
    await presence.list("r");
    await presence.remove("r", ALICE, "n1:1");
    await presence.purgeNode("n1");
    await presence.drop("r");
    expect(commands()).toEqual(["EVALSHA", "EVALSHA", "EVALSHA", "EVALSHA", "EVALSHA"]);
    await client.send("SCRIPT", ["FLUSH"]);
    sent.mockClear();
    expect(await presence.add("r", ALICE, "n1:1")).toBe(true);
    expect(await presence.add("r", ALICE, "n1:2")).toBe(false);
    expect(commands()).toEqual(["EVALSHA", "EVAL", "EVALSHA"]);
    sent.mockRestore();
  });

  test("a silent Redis: calls reject with BrokerUnavailableError after timeoutMs", async () => {
    const { client: admin, presence } = await open(freshPrefix(), 200);
    await presence.add("r", ALICE, "n1:1");
    await admin.send("CLIENT", ["PAUSE", "600", "ALL"]);
    const t0 = performance.now();
    const err = await presence.list("r").catch((e: unknown) => e);
    expect(err).toBeInstanceOf(BrokerUnavailableError);
    expect(performance.now() - t0).toBeLessThan(550);
    await Bun.sleep(500);
    expect(await presence.list("r")).toEqual([{ user_id: ALICE, connections: 1 }]);
  });
});

// Last, on a server of its own: it is killed.
describe.skipIf(!RUN)("redis killed", () => {
  const redis = sharedRedis();

  test("calls reject with BrokerUnavailableError at once; after a restart they work again", async () => {
    const client: RedisClient = await redis.client();
    const presence = new RedisPresence(client, freshPrefix());
    await presence.load();
    await presence.add("r", ALICE, "n1:1");
    await redis.server.kill();
    for (const call of [
      () => presence.add("r", BOB, "n1:2"),
      () => presence.remove("r", ALICE, "n1:1"),
      () => presence.list("r"),
      () => presence.purgeNode("n1"),
      () => presence.drop("r"),
    ]) {
      const t0 = performance.now();
      const err = await call().catch((e: unknown) => e);
      expect(err).toBeInstanceOf(BrokerUnavailableError);
      expect(performance.now() - t0).toBeLessThan(1_000);
    }
    await redis.server.restart();
    const deadline = Date.now() + 5_000;
    let users: unknown;
    while (Date.now() < deadline) {
      users = await presence.list("r").catch((e: unknown) => e);
      if (Array.isArray(users)) break;
      await Bun.sleep(100);
    }
    // Nothing is persisted: the restarted Redis is empty, and its script cache too (EVAL).
    expect(users).toEqual([]);
    expect(await presence.add("r", ALICE, "n1:1")).toBe(true);
    expect(await presence.list("r")).toEqual([{ user_id: ALICE, connections: 1 }]);
  });
});
