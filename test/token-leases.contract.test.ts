// Runs the TokenLeases contract against memory and Redis (a redis-server of the test's own).

import { afterAll, beforeAll, describe } from "bun:test";
import type { RedisClient } from "bun";
import { MemoryTokenLeases } from "../src/cluster/leases.ts";
import { connectRedis } from "../src/cluster/redis.ts";
import { RedisTokenLeases } from "../src/cluster/redis-leases.ts";
import { tokenLeasesContract } from "./contract/token-leases.ts";
import { type RedisServer, redisAvailable, startRedis } from "./redis-server.ts";

const memory = new MemoryTokenLeases();
tokenLeasesContract("memory", async () => memory);

describe.skipIf(!redisAvailable())("redis", () => {
  let redis: RedisServer;
  const clients: RedisClient[] = [];
  beforeAll(async () => {
    redis = await startRedis();
  });
  afterAll(async () => {
    for (const c of clients) c.close();
    await redis.stop();
  });
  const prefix = `l${crypto.randomUUID().slice(0, 8)}:`;
  tokenLeasesContract("redis", async () => {
    const c = await connectRedis(redis.url);
    clients.push(c);
    return new RedisTokenLeases(c, prefix);
  });
});
