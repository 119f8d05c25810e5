// Runs the Broker contract against every implementation, plus what only Redis can do: lose the
// server and get it back (subscriptions restored by themselves, no duplicate delivery).

import { describe, expect, test } from "bun:test";
import { BrokerUnavailableError, type Envelope } from "../src/cluster/broker.ts";
import { MemoryBroker, MemoryBus } from "../src/cluster/memory-broker.ts";
import { RedisBroker } from "../src/cluster/redis-broker.ts";
import { brokerContract } from "./contract/broker.ts";
import { redisAvailable, sharedRedis } from "./redis-server.ts";

brokerContract("memory", async () => {
  const bus = new MemoryBus();
  return { node: async (id, options) => new MemoryBroker(id, { bus, ...options }) };
});

test("a memory broker on a bus of its own is 'off' (one node); on a shared bus 'up'", () => {
  expect(new MemoryBroker("solo").state).toBe("off");
  expect(new MemoryBroker("member", { bus: new MemoryBus() }).state).toBe("up");
});

const withRedis = redisAvailable();

describe.skipIf(!withRedis)("redis", () => {
  const shared = sharedRedis();
  const client = () => shared.client();
  const redis = {
    kill: () => shared.server.kill(),
    restart: () => shared.server.restart(),
  };

  brokerContract("redis", async () => {
    const prefix = `t${crypto.randomUUID().slice(0, 8)}:`;
    return {
      node: async (id, options) => RedisBroker.create(id, await client(), { prefix, ...options }),
    };
  });

  // The same contract with CLUSTER_COALESCE_MS at work (a long hold, so holds surely happen):
  // order, exactly once and echo are the same when envelopes wait to go out together.
  brokerContract("redis, coalescing 5 ms", async () => {
    const prefix = `c${crypto.randomUUID().slice(0, 8)}:`;
    return {
      node: async (id, options) =>
        RedisBroker.create(id, await client(), { prefix, coalesceMs: 5, ...options }),
    };
  });

  test("coalescing: a burst of envelopes goes out in one turn, in order; one alone at once", async () => {
    const prefix = `h${crypto.randomUUID().slice(0, 8)}:`;
    const hold = 50; // the most CLUSTER_COALESCE_MS allows
    const a = await RedisBroker.create("a", await client(), { prefix });
    const b = await RedisBroker.create("b", await client(), { prefix, coalesceMs: hold });
    // `run`: which synchronous run of deliveries an envelope came in (one per microtask drain).
    const got: Array<{ content: string; at: number; run: number }> = [];
    let run = 0;
    let counting = false;
    b.onEnvelope((e) => {
      if (!counting) {
        counting = true;
        queueMicrotask(() => {
          run++;
          counting = false;
        });
      }
      if (e.t === "message") got.push({ content: e.m.content, at: performance.now(), run });
    });
    await b.subscribeRoom("r");
    // Alone (the average gap starts long): handed on as it arrives, well before the hold.
    const t0 = performance.now();
    await a.publishRoom("r", chat("alone"));
    while (got.length < 1 && performance.now() - t0 < 5000) await Bun.sleep(1);
    expect(got.map((g) => g.content)).toEqual(["alone"]);
    expect((got[0]?.at ?? Infinity) - t0).toBeLessThan(hold / 2);
    // 200 back to back: once the gaps are short, the next waits and the rest join it, in order.
    const burst = Array.from({ length: 200 }, (_, k) => `m${k}`);
    for (const c of burst) a.publishRoom("r", chat(c));
    const t1 = performance.now();
    while (got.length < 201 && performance.now() - t1 < 5000) await Bun.sleep(5);
    expect(got.slice(1).map((g) => g.content)).toEqual(burst);
    // Fewer turns than envelopes: most went out together, at one moment after a hold.
    const runs = new Set(got.slice(1).map((g) => g.run));
    expect(runs.size).toBeLessThan(50);
    expect(b.sizes().held).toBe(0);
    await a.close();
    await b.close();
  }, 20_000);

  const chat = (content: string, room = "r"): Envelope => ({
    t: "message",
    m: { id: content, room, from: "u", content, sent_at: "2026-12-02T00:00:00.000Z" },
  });

  test("Redis killed and restarted: publish fails fast while down, subscriptions come back by themselves within 2 s, nothing twice", async () => {
    const prefix = `k${crypto.randomUUID().slice(0, 8)}:`;
    const a = await RedisBroker.create("a", await client(), { prefix });
    const b = await RedisBroker.create("b", await client(), { prefix });
    const got: string[] = [];
    b.onEnvelope((e) => {
      if (e.t === "message") got.push(e.m.content);
    });
    let restored = 0;
    b.onRestore(() => restored++);
    await b.subscribeRoom("r");
    await a.publishRoom("r", chat("before"));
    const until = async (cond: () => boolean, ms: number) => {
      const deadline = Date.now() + ms;
      while (!cond() && Date.now() < deadline) await Bun.sleep(10);
      return cond();
    };
    expect(await until(() => got.length === 1, 2000)).toBe(true);

    await redis.kill();
    expect(await until(() => a.state === "down" && b.state === "down", 2000)).toBe(true);
    const t0 = Date.now();
    const err = await a.publishRoom("r", chat("lost")).catch((e) => e);
    expect(err).toBeInstanceOf(BrokerUnavailableError);
    expect(Date.now() - t0).toBeLessThan(1000);
    // A room joined while Redis is down is subscribed once it is back.
    await b.subscribeRoom("late").catch(() => {});

    await redis.restart();
    const back = Date.now();
    expect(await until(() => a.state === "up" && b.state === "up" && restored > 0, 5000)).toBe(
      true,
    );
    // Within 2 s of Redis answering again, both channels deliver, each message once.
    let delivered = false;
    while (!delivered && Date.now() - back < 2000) {
      await a.publishRoom("r", chat("after")).catch(() => {});
      await a.publishRoom("late", chat("late", "late")).catch(() => {});
      delivered = await until(() => got.includes("after") && got.includes("late"), 200);
    }
    expect(delivered).toBe(true);
    expect(Date.now() - back).toBeLessThan(2000);
    got.length = 0;
    await a.publishRoom("r", chat("once"));
    await a.publishRoom("r", chat("end"));
    expect(await until(() => got.includes("end"), 2000)).toBe(true);
    expect(got.filter((c) => c !== "after" && c !== "late")).toEqual(["once", "end"]);
    await a.close();
    await b.close();
  }, 20_000);
});
