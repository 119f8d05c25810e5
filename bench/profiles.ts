// Scenario sizes: `full` (bun run bench, about 6 minutes), `quick` (about 1–1½ minutes) and `tiny`
// (the `bun test` smoke run: a few hundred messages). Times are in milliseconds.

export interface FanoutRate {
  label: string;
  deliveriesPerSec: number;
}

export interface Profile {
  name: "full" | "quick" | "tiny";
  /** Destination addresses 127.0.0.1 … 127.0.0.N (one gives only ~28k ephemeral ports). */
  hosts: number;
  /**
   * Users made through the REST API for the shared shapes (the connections scenario's shared
   * shape, fan-out, churn, noisy neighbour: sockets are spread over them), plus one flooder.
   * The one-socket-per-user shapes use `connections.n + connections.warmup` more users, written
   * straight into Kabar's SQLite store (bench/users.ts).
   */
  users: number;
  connections: {
    /** Sockets per repeat, in both shapes (one socket per user; all on `users` users). */
    n: number;
    clients: number;
    roomSize: number;
    warmup: number;
    concurrency: number;
    /** Runs per server, alternating servers, each on a freshly started server. */
    repeats: number;
  };
  fanout: {
    rooms: number;
    members: number;
    senders: number;
    window: number;
    closedMs: number;
    rates: FanoutRate[];
    rateMs: number;
    warmupMs: number;
    maxMessages: number;
    /** Each mode runs this many times per server, alternating servers. */
    repeats: number;
  };
  churn: {
    concurrency: number;
    ms: number;
    maxOps: number;
    /** Runs per server, alternating servers (one long-lived server per side). */
    repeats: number;
  };
  noisy: {
    rooms: number;
    members: number;
    senders: number;
    deliveriesPerSec: number;
    floodFramesPerSec: number;
    floodSockets: number;
    ms: number;
    warmupMs: number;
    capacity: number;
    refillPerSec: number;
    repeats: number;
  };
  /**
   * RSS is read after a full GC in the server, no sooner than `minMs` after it (freed pages go
   * back to the system in steps: the last seen 100–650 ms after) and once it has not moved for
   * `stableMs`.
   */
  settle: { minMs: number; stableMs: number };
  /**
   * The default-settings row: Kabar with its default environment (LOG_LEVEL info, bot on, rate
   * limit 100 per 60 s per user, 20 sockets per user, 50 rooms per user) — connections in the
   * one-socket-per-user shape, and fan-out in `fanout`'s rooms at `rate` deliveries/s from as
   * many senders per room as keep each sender at or under `perSenderMsgPerSec`, so the default
   * rate limit (1.67 frames/s per user, bucket of 100) never refuses a frame. The message
   * content holds a vowel, so the bot answers every message, as it would a person's.
   */
  defaults: { rate: FanoutRate; perSenderMsgPerSec: number };
  /** Before each measured phase, wait up to this long for other processes to go quiet. */
  quietWaitMs: number;
}

const RATES: FanoutRate[] = [
  { label: "20k/s", deliveriesPerSec: 20_000 },
  { label: "50k/s", deliveriesPerSec: 50_000 },
];

export const PROFILES: Record<Profile["name"], Profile> = {
  full: {
    name: "full",
    hosts: 8,
    users: 4,
    connections: {
      n: 18_000,
      clients: 2,
      roomSize: 100,
      warmup: 4000,
      concurrency: 128,
      repeats: 4,
    },
    fanout: {
      rooms: 10,
      members: 100,
      senders: 2,
      window: 4,
      closedMs: 4000,
      rates: RATES,
      rateMs: 4000,
      warmupMs: 1000,
      maxMessages: 4_000_000,
      repeats: 4,
    },
    churn: { concurrency: 64, ms: 5000, maxOps: 100_000, repeats: 3 },
    noisy: {
      rooms: 4,
      members: 50,
      senders: 2,
      deliveriesPerSec: 5000,
      floodFramesPerSec: 10_000,
      floodSockets: 2,
      ms: 4000,
      warmupMs: 500,
      capacity: 200,
      refillPerSec: 100,
      repeats: 3,
    },
    settle: { minMs: 800, stableMs: 300 },
    defaults: { rate: { label: "20k/s", deliveriesPerSec: 20_000 }, perSenderMsgPerSec: 1 },
    quietWaitMs: 20_000,
  },
  quick: {
    name: "quick",
    hosts: 4,
    users: 4,
    connections: {
      n: 5000,
      clients: 1,
      roomSize: 100,
      warmup: 500,
      concurrency: 64,
      repeats: 2,
    },
    fanout: {
      rooms: 10,
      members: 100,
      senders: 2,
      window: 4,
      closedMs: 1000,
      rates: RATES,
      rateMs: 1000,
      warmupMs: 200,
      maxMessages: 500_000,
      repeats: 2,
    },
    churn: { concurrency: 32, ms: 800, maxOps: 20_000, repeats: 2 },
    noisy: {
      rooms: 4,
      members: 50,
      senders: 2,
      deliveriesPerSec: 5000,
      floodFramesPerSec: 5000,
      floodSockets: 2,
      ms: 1000,
      warmupMs: 200,
      capacity: 200,
      refillPerSec: 100,
      repeats: 1,
    },
    settle: { minMs: 800, stableMs: 300 },
    defaults: { rate: { label: "20k/s", deliveriesPerSec: 20_000 }, perSenderMsgPerSec: 1 },
    quietWaitMs: 500,
  },
  tiny: {
    name: "tiny",
    hosts: 2,
    users: 2,
    connections: {
      n: 60,
      clients: 1,
      roomSize: 20,
      warmup: 10,
      concurrency: 16,
      repeats: 1,
    },
    fanout: {
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
    },
    churn: { concurrency: 4, ms: 300, maxOps: 100, repeats: 1 },
    noisy: {
      rooms: 2,
      members: 10,
      senders: 1,
      deliveriesPerSec: 400,
      floodFramesPerSec: 500,
      floodSockets: 1,
      ms: 300,
      warmupMs: 50,
      capacity: 200,
      refillPerSec: 100,
      repeats: 1,
    },
    settle: { minMs: 0, stableMs: 100 },
    defaults: { rate: { label: "200/s", deliveriesPerSec: 200 }, perSenderMsgPerSec: 1 },
    quietWaitMs: 0,
  },
};
