// The connections and churn scenarios, one repeat against one server (bench/paired.ts repeats them
// in alternation): clients in their own processes, server memory and CPU read from /proc around
// each measured phase. Also the setup and helpers every scenario shares.
import { Agent } from "./agent.ts";
import type { ChurnResult, PulseResult, Target } from "./commands.ts";
import { cpuSeconds, machineCpu, rssBytes } from "./proc.ts";
import type { Profile } from "./profiles.ts";
import type { ServerProc } from "./servers.ts";
import { round } from "./stats.ts";

export interface Setup {
  profile: Profile;
  hosts: string[];
  tokens: string[];
  flooderToken: string;
  clientCore: number;
  progress: boolean;
  log: (msg: string) => void;
  /** Waits (bounded) until no other process is busy on the machine; called before each measurement. */
  quiet: (phase: string) => Promise<void>;
}

/** One repeat of the connections scenario, on a server started for it. */
export interface ConnectionsRun {
  n: number;
  opened: number;
  failed: number;
  openSec: number;
  connPerSec: number;
  rssBeforeMiB: number;
  rssAfterMiB: number;
  rssPerConnKiB: number;
  /** Every RSS reading followed a full GC in the server (bench/gc-hook.ts answered). */
  rssAfterGc: boolean;
  cpuSec: number;
  cpuPerConnUs: number;
  /** CPU of every process but the server and the clients while the sockets opened. */
  otherCpuSec: number;
  /** CPU time the hypervisor took from this VM's cores while the sockets opened. */
  stealSec: number;
  pulse: PulseResult;
  errors: string[];
}

/**
 * The connections scenario over its alternating repeats (bench/paired.ts): `n` sockets per repeat;
 * time to open, connections/s, RSS readings, RSS and CPU per connection and pulse time are medians;
 * opened, failed, pulse counts, CPU seconds, other processes' CPU and steal are sums over the
 * repeats.
 */
export interface ConnectionsResult extends ConnectionsRun {
  /** Sockets attempted over all repeats (n × repeats). */
  attempted: number;
  repeats: ConnectionsRun[];
}

/** One churn repeat. */
export interface ChurnRun extends ChurnResult {
  cpuPerOpUs: number;
  otherCpuSec: number;
  stealSec: number;
}

/**
 * Churn over its alternating repeats on one server: operations/s and CPU per operation are
 * medians; operations, failures, time, other processes' CPU and steal are sums; RSS is read before the
 * first repeat and after the last, so its growth spans every churn operation (a leak shows).
 */
export interface ChurnScenario extends ChurnRun {
  rssBeforeMiB: number;
  rssAfterMiB: number;
  /** Both RSS readings followed a full GC in the server. */
  rssAfterGc: boolean;
  repeats: ChurnRun[];
}

export const MiB = (b: number) => round(b / 2 ** 20, 1);
export const names = (prefix: string, n: number) =>
  Array.from({ length: n }, (_, k) => `${prefix}_${k}`);
export const target = (s: Setup, srv: ServerProc, tokens = s.tokens): Target => ({
  hosts: s.hosts,
  port: srv.port,
  tokens,
});

/** Longest wait for RSS to stop moving after a collection. */
const SETTLE_MAX_MS = 4000;

export interface RssReading {
  bytes: number;
  /** The server ran a full GC first (bench/gc-hook.ts answered). */
  gc: boolean;
}

/**
 * The server's RSS once it holds only what it keeps: a full GC in the server, then readings every
 * 100 ms until `minMs` have passed and the last `stableMs` of them stayed within 64 KiB (at most
 * SETTLE_MAX_MS). `meanwhile` (the wait for a quiet machine) runs during the readings.
 */
export async function settledRss(
  srv: ServerProc,
  settle: Profile["settle"],
  meanwhile: () => Promise<void> = async () => {},
): Promise<RssReading> {
  const gc = await srv.gc();
  const start = performance.now();
  const window = Math.max(1, Math.round(settle.stableMs / 100));
  const seen = [rssBytes(srv.pid)];
  const readings = async () => {
    while (performance.now() - start < SETTLE_MAX_MS) {
      await Bun.sleep(100);
      seen.push(rssBytes(srv.pid));
      const last = seen.slice(-window - 1);
      const still = last.length > window && Math.max(...last) - Math.min(...last) <= 64 * 1024;
      if (still && performance.now() - start >= settle.minMs) break;
    }
  };
  await Promise.all([readings(), meanwhile()]);
  return { bytes: seen[seen.length - 1] ?? 0, gc };
}

/** Machine-wide busy CPU and steal, and the part of the busy CPU the server and these clients used. */
interface Snapshot {
  all: number;
  steal: number;
  ours: number;
}
function cpuSnapshot(srv: ServerProc, agents: Agent[]): Snapshot {
  let ours = cpuSeconds(srv.pid);
  for (const a of agents) ours += cpuSeconds(a.pid);
  const m = machineCpu();
  return { all: m.tasks, steal: m.steal, ours };
}
const otherCpu = (a: Snapshot, b: Snapshot) =>
  round(Math.max(0, b.all - a.all - (b.ours - a.ours)), 2);
const steal = (a: Snapshot, b: Snapshot) => round(Math.max(0, b.steal - a.steal), 2);

export async function withAgents<T>(
  s: Setup,
  n: number,
  fn: (agents: Agent[]) => Promise<T>,
): Promise<T> {
  const agents = Array.from({ length: n }, (_, k) =>
    Agent.start(`c${k}`, { core: s.clientCore, progress: s.progress }),
  );
  try {
    return await fn(agents);
  } finally {
    await Promise.all(agents.map((a) => a.stop()));
  }
}

/**
 * N authenticated sockets, each joined to a room: open time, memory and CPU per socket, pulse.
 * RSS per socket is the growth from a reading taken with no bench sockets open (after a warm-up
 * whose sockets are closed again), so run it on a server that holds no other sockets.
 */
export function connections(s: Setup, srv: ServerProc): Promise<ConnectionsRun> {
  const c = s.profile.connections;
  return withAgents(s, c.clients, async (agents) => {
    const first = agents[0] as Agent;
    const t = target(s, srv);
    const warmRooms = names("warm", Math.max(1, Math.ceil(c.warmup / c.roomSize)));
    await first.call({ op: "rooms", target: t, rooms: warmRooms, timeoutMs: 10_000 }, 20_000);
    await first.call(
      {
        op: "open",
        group: "warm",
        target: t,
        count: c.warmup,
        concurrency: c.concurrency,
        rooms: warmRooms,
        create: false,
        timeoutMs: 10_000,
      },
      60_000,
    );
    await first.call({ op: "pulse", group: "warm", timeoutMs: 5000 }, 10_000);
    await first.call({ op: "close", group: "warm", timeoutMs: 5000 }, 10_000);
    const shares = agents.map(
      (_, k) => Math.floor(c.n / c.clients) + (k < c.n % c.clients ? 1 : 0),
    );
    const rooms = shares.map((share, k) =>
      names(`c${k}`, Math.max(1, Math.ceil(share / c.roomSize))),
    );
    await Promise.all(
      agents.map((a, k) =>
        a.call({ op: "rooms", target: t, rooms: rooms[k] ?? [], timeoutMs: 10_000 }, 20_000),
      ),
    );
    const rss0 = await settledRss(srv, s.profile.settle, () => s.quiet(`connections ${srv.name}`));
    const cpu0 = cpuSeconds(srv.pid);
    const snap0 = cpuSnapshot(srv, agents);
    const t0 = performance.now();
    const opens = await Promise.all(
      agents.map((a, k) =>
        a.call(
          {
            op: "open",
            group: "c",
            target: t,
            count: shares[k] ?? 0,
            concurrency: c.concurrency,
            rooms: rooms[k] ?? [],
            create: false,
            timeoutMs: 20_000,
          },
          120_000 + (shares[k] ?? 0) * 5,
        ),
      ),
    );
    const openMs = performance.now() - t0;
    const cpu1 = cpuSeconds(srv.pid);
    const snap1 = cpuSnapshot(srv, agents);
    const rss1 = await settledRss(srv, s.profile.settle);
    const pulses = await Promise.all(
      agents.map((a) => a.call({ op: "pulse", group: "c", timeoutMs: 10_000 }, 20_000)),
    );
    await Promise.all(
      agents.map((a) => a.call({ op: "close", group: "c", timeoutMs: 10_000 }, 20_000)),
    );
    const opened = opens.reduce((a, o) => a + o.opened, 0);
    const sum = (f: (p: PulseResult) => number) => pulses.reduce((a, p) => a + f(p), 0);
    return {
      n: c.n,
      opened,
      failed: opens.reduce((a, o) => a + o.failed, 0),
      openSec: round(openMs / 1000, 3),
      connPerSec: Math.round((opened * 1000) / openMs),
      rssBeforeMiB: MiB(rss0.bytes),
      rssAfterMiB: MiB(rss1.bytes),
      rssPerConnKiB: round((rss1.bytes - rss0.bytes) / 1024 / Math.max(1, opened), 2),
      rssAfterGc: rss0.gc && rss1.gc,
      cpuSec: round(cpu1 - cpu0, 2),
      cpuPerConnUs: round(((cpu1 - cpu0) * 1e6) / Math.max(1, opened), 1),
      otherCpuSec: otherCpu(snap0, snap1),
      stealSec: steal(snap0, snap1),
      pulse: {
        expected: sum((p) => p.expected),
        received: sum((p) => p.received),
        lost: sum((p) => p.lost),
        ms: Math.max(...pulses.map((p) => p.ms)),
      },
      errors: opens.flatMap((o) => o.errors),
    };
  });
}

/** connect → auth → join → leave → disconnect in a loop, from `agent` (RSS: bench/paired.ts). */
export async function churnOnce(s: Setup, agent: Agent, srv: ServerProc): Promise<ChurnRun> {
  const c = s.profile.churn;
  await s.quiet(`churn ${srv.name}`);
  const cpu0 = cpuSeconds(srv.pid);
  const snap0 = cpuSnapshot(srv, [agent]);
  const r = await agent.call(
    {
      op: "churn",
      target: target(s, srv),
      room: "churn",
      create: false,
      concurrency: c.concurrency,
      durationMs: c.ms,
      maxOps: c.maxOps,
      opTimeoutMs: 10_000,
    },
    c.ms + 60_000,
  );
  const cpu1 = cpuSeconds(srv.pid);
  const snap1 = cpuSnapshot(srv, [agent]);
  return {
    ...r,
    otherCpuSec: otherCpu(snap0, snap1),
    stealSec: steal(snap0, snap1),
    cpuPerOpUs: round(((cpu1 - cpu0) * 1e6) / Math.max(1, r.ops), 1),
  };
}
