// Runs the TokenLeases contract against memory and Redis (a redis-server of the test's own).

import { describe } from "bun:test";
import { MemoryTokenLeases } from "../src/cluster/leases.ts";
import { RedisTokenLeases } from "../src/cluster/redis-leases.ts";
import { tokenLeasesContract } from "./contract/token-leases.ts";
import { redisAvailable, sharedRedis } from "./redis-server.ts";

const memory = new MemoryTokenLeases();
tokenLeasesContract("memory", async () => memory);

describe.skipIf(!redisAvailable())("redis", () => {
  const redis = sharedRedis();
  const prefix = `l${crypto.randomUUID().slice(0, 8)}:`;
  tokenLeasesContract("redis", async () => new RedisTokenLeases(await redis.client(), prefix));
});
