// The line protocol between the harness (bench/run.ts) and its load clients (bench/client.ts):
// one JSON command per stdin line, one JSON reply per stdout line.
import type { Latency } from "./stats.ts";

/** Where sockets connect: socket i goes to hosts[i % hosts.length] with tokens[...]. */
export interface Target {
  hosts: string[];
  port: number;
  tokens: string[];
  /**
   * Several nodes (bench/cluster.ts): socket i connects to
   * ports[floor(i / portStride) % ports.length] instead of `port` (rooms are still created
   * through `port`). With portStride = the number of rooms, each room's members alternate
   * between the nodes.
   */
  ports?: number[];
  portStride?: number;
}

export interface OpenCmd {
  op: "open";
  group: string;
  target: Target;
  count: number;
  /** Sockets being opened at once. */
  concurrency: number;
  /** Socket i joins rooms[i % rooms.length]. */
  rooms: string[];
  /** Create the rooms first (Kabar needs `create_room` before `join_room`). */
  create: boolean;
  timeoutMs: number;
}
export interface OpenResult {
  opened: number;
  failed: number;
  ms: number;
  errors: string[];
}

export interface FanoutCmd {
  op: "fanout";
  group: string;
  /** Senders per room (its first members). */
  senders: number;
  /** closed: each sender keeps `window` messages in flight; rate: a fixed delivery rate. */
  mode: "closed" | "rate";
  window: number;
  /** Target deliveries per second (rate mode); messages/s = this ÷ members per room. */
  deliveriesPerSec: number;
  warmupMs: number;
  durationMs: number;
  drainMs: number;
  /** Stop sending after this many messages (bounds the run). */
  maxMessages: number;
  /** Server process to read CPU time from at the window's edges. */
  serverPid: number;
  /** More server processes (other nodes, redis-server) whose CPU counts as server CPU too. */
  extraPids?: number[];
  /** Appended to every message's content ("" for none); " halo" makes Kabar's bot answer. */
  suffix: string;
}
export interface FanoutResult {
  sent: number;
  /** Deliveries every member should have had (all phases). */
  expected: number;
  received: number;
  lost: number;
  duplicates: number;
  /** Deliveries received inside the measuring window. */
  windowDeliveries: number;
  windowMs: number;
  deliveriesPerSec: number;
  serverCpuSec: number;
  /** With `extraPids`: each server process's CPU in the window (serverPid first). */
  pidCpuSec?: number[];
  /** This client process's CPU in the window. */
  clientCpuSec: number;
  /** Every other process on the machine (other clients, the harness, anything else running). */
  otherCpuSec: number;
  /** CPU time the hypervisor took from this VM's cores in the window. */
  stealSec: number;
  latency: Latency;
  unexpectedCloses: number;
  /** Error frames received (any code), and of those the `rate_limited` ones (refused frames). */
  errorFrames: number;
  rateLimited: number;
  /** Bot answers received (Kabar with BOT_ENABLED). */
  botFrames: number;
}

export interface PulseCmd {
  op: "pulse";
  group: string;
  timeoutMs: number;
}
export interface PulseResult {
  expected: number;
  received: number;
  lost: number;
  ms: number;
}

export interface CloseCmd {
  op: "close";
  group: string;
  timeoutMs: number;
}
export interface CloseResult {
  closed: number;
  ms: number;
}

export interface ChurnCmd {
  op: "churn";
  target: Target;
  room: string;
  create: boolean;
  concurrency: number;
  durationMs: number;
  maxOps: number;
  opTimeoutMs: number;
}
export interface ChurnResult {
  ops: number;
  failed: number;
  ms: number;
  opsPerSec: number;
  errors: string[];
}

export interface FloodCmd {
  op: "flood";
  target: Target;
  room: string;
  sockets: number;
  framesPerSec: number;
  /** Share of frames that are malformed (the rest are valid messages). */
  malformedShare: number;
  durationMs: number;
}
export interface FloodResult {
  sent: number;
  malformed: number;
  rateLimited: number;
  otherErrors: number;
  echoes: number;
  unexpectedCloses: number;
}

export interface RoomsCmd {
  op: "rooms";
  target: Target;
  rooms: string[];
  timeoutMs: number;
}

export interface ExitCmd {
  op: "exit";
}

export interface Commands {
  open: OpenCmd;
  fanout: FanoutCmd;
  pulse: PulseCmd;
  close: CloseCmd;
  churn: ChurnCmd;
  flood: FloodCmd;
  rooms: RoomsCmd;
  exit: ExitCmd;
}
export interface Results {
  open: OpenResult;
  fanout: FanoutResult;
  pulse: PulseResult;
  close: CloseResult;
  churn: ChurnResult;
  flood: FloodResult;
  rooms: { created: number };
  exit: Record<string, never>;
}
export type Op = keyof Commands;

export type Request = { id: number } & Commands[Op];
export type Reply =
  | { id: number; ok: true; result: unknown }
  | { id: number; ok: false; error: string };
