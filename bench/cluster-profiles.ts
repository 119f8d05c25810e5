// Sizes of the cluster fan-out benchmark (bench/cluster.ts): `full` (npm run bench:cluster, about
// 4–5 minutes), `quick` (npm run bench:cluster:quick: the full shape, closed loop and 20k/s, 2
// repeats, about 1.5 minutes: for A/B checks while working) and `tiny` (the `bun test` smoke run:
// a few hundred messages). The room shape and
// rates of `full` are the single-node fan-out scenario's (bench/profiles.ts): 10 rooms × 100
// members on 4 shared users, 2 senders per room, a window of 4 in flight per sender.
import type { FanoutRate } from "./profiles.ts";

export interface ClusterProfile {
  name: "full" | "quick" | "tiny";
  /** Destination addresses 127.0.0.1 … 127.0.0.N. */
  hosts: number;
  /** Users made through the REST API; socket i uses user i % users. */
  users: number;
  rooms: number;
  members: number;
  senders: number;
  window: number;
  closedMs: number;
  rates: FanoutRate[];
  rateMs: number;
  warmupMs: number;
  maxMessages: number;
  /** Each side runs this many times, in rotation, each on freshly started servers and client. */
  repeats: number;
  /** Before each measured window, wait up to this long for other processes to go quiet. */
  quietWaitMs: number;
  /**
   * A window in which other processes (not the servers, not the load client) used more than
   * QUIET_CORES on average is run again, at most this many times; every disturbed window is
   * listed in the results.
   */
  retries: number;
}

export const CLUSTER_PROFILES: Record<ClusterProfile["name"], ClusterProfile> = {
  full: {
    name: "full",
    hosts: 8,
    users: 4,
    rooms: 10,
    members: 100,
    senders: 2,
    window: 4,
    closedMs: 4000,
    rates: [
      { label: "20k/s", deliveriesPerSec: 20_000 },
      { label: "50k/s", deliveriesPerSec: 50_000 },
    ],
    rateMs: 4000,
    warmupMs: 1000,
    maxMessages: 4_000_000,
    repeats: 4,
    quietWaitMs: 20_000,
    retries: 2,
  },
  quick: {
    name: "quick",
    hosts: 8,
    users: 4,
    rooms: 10,
    members: 100,
    senders: 2,
    window: 4,
    closedMs: 4000,
    rates: [{ label: "20k/s", deliveriesPerSec: 20_000 }],
    rateMs: 4000,
    warmupMs: 1000,
    maxMessages: 4_000_000,
    repeats: 2,
    quietWaitMs: 5_000,
    retries: 0,
  },
  tiny: {
    name: "tiny",
    hosts: 2,
    users: 2,
    rooms: 2,
    members: 10,
    senders: 1,
    window: 2,
    closedMs: 300,
    rates: [{ label: "2k/s", deliveriesPerSec: 2000 }],
    rateMs: 300,
    warmupMs: 0,
    maxMessages: 300,
    repeats: 1,
    quietWaitMs: 0,
    retries: 0,
  },
};

/** The server setups of one run, in rotation. */
export type ClusterSideKey = "baseline" | "oneNode" | "oneNodeRedis" | "twoNodes";
export const SIDE_KEYS: ClusterSideKey[] = ["baseline", "oneNode", "oneNodeRedis", "twoNodes"];

export const SIDE_LABELS: Record<ClusterSideKey, string> = {
  baseline: "bare Bun, 1 process",
  oneNode: "Kabar, 1 node",
  oneNodeRedis: "Kabar, 1 node + Redis",
  twoNodes: "Kabar, 2 nodes + Redis",
};
