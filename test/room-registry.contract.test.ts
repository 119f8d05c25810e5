// Runs the RoomRegistry contract against every implementation: memory, and Redis on a
// redis-server of this file's own (two clients on one prefix play two nodes of a cluster).
import { afterAll, describe, test } from "bun:test";
import { MemoryRoomRegistry } from "../src/rooms/memory.ts";
import { roomRegistryContract } from "./contract/room-registry.ts";
import { freshPrefix, openRedisRegistry } from "./redis-rooms.ts";
import { redisAvailable, startRedis } from "./redis-server.ts";

roomRegistryContract("memory", async (limits) => new MemoryRoomRegistry(limits));

if (redisAvailable()) {
  const redis = await startRedis();
  afterAll(() => redis.stop());
  roomRegistryContract("redis", (limits) => openRedisRegistry(redis.url, limits), {
    pair: async (limits) => {
      const prefix = freshPrefix();
      return [
        await openRedisRegistry(redis.url, limits, prefix),
        await openRedisRegistry(redis.url, limits, prefix),
      ];
    },
  });
} else {
  describe.skip("RoomRegistry contract: redis (redis-server not found)", () => {
    test("skipped", () => {});
  });
}
