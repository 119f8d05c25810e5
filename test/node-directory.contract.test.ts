// Runs the NodeDirectory contract against memory and Redis (a redis-server of the test's own).

import { describe } from "bun:test";
import { MemoryNodeDirectory } from "../src/cluster/memory-nodes.ts";
import { RedisNodeDirectory } from "../src/cluster/redis-nodes.ts";
import { nodeDirectoryContract } from "./contract/node-directory.ts";
import { redisAvailable, sharedRedis } from "./redis-server.ts";

nodeDirectoryContract("memory", async () => {
  const shared = new MemoryNodeDirectory();
  return { open: async () => shared };
});

describe.skipIf(!redisAvailable())("redis", () => {
  const redis = sharedRedis();
  nodeDirectoryContract("redis", async () => {
    const prefix = `d${crypto.randomUUID().slice(0, 8)}:`;
    return { open: async () => new RedisNodeDirectory(await redis.client(), prefix) };
  });
});
