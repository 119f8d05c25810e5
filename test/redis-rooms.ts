// Test helper: a RedisRoomRegistry over a client of its own (what a node would open), which
// dispose() closes, and a fresh key prefix per call so tests never see each other's rooms.
import type { RedisClient } from "bun";
import { connectRedis } from "../src/cluster/redis.ts";
import { type RedisRegistryOptions, RedisRoomRegistry } from "../src/rooms/redis.ts";
import type { RoomLimits } from "../src/rooms/registry.ts";

let prefixes = 0;
/** A key prefix no other test uses. */
export const freshPrefix = (): string => `kabar-test-${process.pid}-${++prefixes}:`;

export class OwnClientRegistry extends RedisRoomRegistry {
  constructor(
    readonly redis: RedisClient,
    limits: RoomLimits,
    prefix: string,
    options?: RedisRegistryOptions,
  ) {
    super(redis, limits, prefix, options);
  }

  override async dispose(): Promise<void> {
    await super.dispose();
    this.redis.close();
  }
}

export async function openRedisRegistry(
  url: string,
  limits: RoomLimits,
  prefix = freshPrefix(),
  options?: RedisRegistryOptions,
): Promise<OwnClientRegistry> {
  const registry = new OwnClientRegistry(await connectRedis(url), limits, prefix, options);
  await registry.load();
  return registry;
}
