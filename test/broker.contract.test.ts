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
