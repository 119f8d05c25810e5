// Runs the NodeDirectory contract against memory and Redis (a redis-server of the test's own).

import { afterAll, beforeAll, describe } from "bun:test";
import type { RedisClient } from "bun";
import { MemoryNodeDirectory } from "../src/cluster/memory-nodes.ts";
import { connectRedis } from "../src/cluster/redis.ts";
import { RedisNodeDirectory } from "../src/cluster/redis-nodes.ts";
import { nodeDirectoryContract } from "./contract/node-directory.ts";
import { type RedisServer, redisAvailable, startRedis } from "./redis-server.ts";

nodeDirectoryContract("memory", async () => {
  const shared = new MemoryNodeDirectory();
  return { open: async () => shared };
});

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
  nodeDirectoryContract("redis", async () => {
    const prefix = `d${crypto.randomUUID().slice(0, 8)}:`;
    return {
      open: async () => {
        const c = await connectRedis(redis.url);
        clients.push(c);
        return new RedisNodeDirectory(c, prefix);
      },
    };
  });
});
