// Picks the shared parts by REDIS_URL: unset → one node (memory broker and room registry);
// set → a cluster member (Redis broker and room registry on one Redis connection).
import type { Config } from "../config.ts";
import type { History, HistoryLimits } from "../history/history.ts";
import { MemoryHistory } from "../history/memory.ts";
import { RedisHistory } from "../history/redis.ts";
import { MemoryPresence } from "../presence/memory.ts";
import type { Presence } from "../presence/presence.ts";
import { RedisPresence } from "../presence/redis.ts";
import { MemoryRoomRegistry } from "../rooms/memory.ts";
import { RedisRoomRegistry } from "../rooms/redis.ts";
import type { RoomRegistry } from "../rooms/registry.ts";
import type { Broker } from "./broker.ts";
import type { TokenLeases } from "./leases.ts";
import { MemoryBroker } from "./memory-broker.ts";
import type { NodeDirectory } from "./nodes.ts";
import { connectRedis } from "./redis.ts";
import { RedisBroker } from "./redis-broker.ts";
import { RedisTokenLeases } from "./redis-leases.ts";
import { RedisNodeDirectory } from "./redis-nodes.ts";

export interface ClusterParts {
  broker: Broker;
  registry: RoomRegistry;
  /** Null on one node. */
  nodes: NodeDirectory | null;
  /** The shared rate-limit buckets; null on one node. */
  leases: TokenLeases | null;
  /** Room history and sequence numbers: in memory on one node, in Redis in a cluster. */
  history: History;
  /** Who is in each room, per user. */
  presence: Presence;
  close(): Promise<void>;
}

/** A node id: random, short, unique enough for the nodes of one cluster. */
export const newNodeId = (): string => crypto.randomUUID().replaceAll("-", "").slice(0, 12);

export async function openCluster(config: Config, nodeId: string): Promise<ClusterParts> {
  const limits = { maxRooms: config.maxRooms, maxRoomsPerUser: config.maxRoomsPerUser };
  const kept: HistoryLimits = {
    size: config.roomHistorySize,
    ttlMs: config.roomHistoryTtlSeconds * 1000,
    maxBytes: config.historyMaxBytes,
  };
  if (config.redisUrl === undefined)
    return {
      broker: new MemoryBroker(nodeId),
      registry: new MemoryRoomRegistry(limits),
      nodes: null,
      leases: null,
      history: new MemoryHistory(kept),
      presence: new MemoryPresence(),
      close: async () => {},
    };
  const redis = await connectRedis(config.redisUrl);
  const registry = new RedisRoomRegistry(redis, limits);
  await registry.load();
  const nodes = new RedisNodeDirectory(redis);
  await nodes.load();
  const leases = new RedisTokenLeases(redis);
  await leases.load();
  const history = new RedisHistory(redis, kept);
  await history.load();
  const presence = new RedisPresence(redis);
  await presence.load();
  const broker = await RedisBroker.create(nodeId, redis, { coalesceMs: config.clusterCoalesceMs });
  return {
    broker,
    registry,
    nodes,
    leases,
    history,
    presence,
    async close() {
      await broker.close();
      redis.close();
    },
  };
}
