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
  /** The `profile.users` REST-made users' tokens (the shared shapes). */
  tokens: string[];
  /**
   * One token per user for the one-socket-per-user shapes: `perUser` for the measured sockets
   * (connections.n of them), `warmUsers` for the warm-up sockets (other users).
   */
  perUser: string[];
  warmUsers: string[];
  flooderToken: string;
  clientCore: number;
  progress: boolean;
  log: (msg: string) => void;
  /** Waits (bounded) until no other process is busy on the machine; called before each measurement. */
  quiet: (phase: string) => Promise<void>;
  /** Records a phase (or one repeat of it) that threw: the run goes on, its figures are missing. */
  fail: (phase: string, error: unknown) => void;
}

/**
 * Who the sockets of one connections run are: `warm` tokens for the warm-up sockets and one
 * token list per client process (socket i of client k uses perClient[k][i % length]).
 */
export interface ConnectionsLoad {
  shape: "one socket per user" | "shared users";
  warm: string[];
  perClient: string[][];
}

/** How many of `n` sockets each of `clients` processes opens. */
export const sharesOf = (n: number, clients: number): number[] =>
  Array.from({ length: clients }, (_, k) => Math.floor(n / clients) + (k < n % clients ? 1 : 0));

/** The one-socket-per-user load: the measured users split between the client processes. */
export function perUserLoad(s: Setup): ConnectionsLoad {
  const c = s.profile.connections;
  let from = 0;
  const perClient = sharesOf(c.n, c.clients).map((share) => {
    from += share;
    return s.perUser.slice(from - share, from);
  });
  return { shape: "one socket per user", warm: s.warmUsers, perClient };
}

/** Every socket on the `profile.users` REST-made users (so every upgrade finds a warm user). */
export function sharedLoad(s: Setup): ConnectionsLoad {
  const perClient = Array.from({ length: s.profile.connections.clients }, () => s.tokens);
  return { shape: "shared users", warm: s.tokens, perClient };
}

/** One repeat of the connections scenario, on a server started for it. */
export interface ConnectionsRun {
  shape: ConnectionsLoad["shape"];
  n: number;
  /** Distinct users the n sockets belong to. */
  users: number;
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
  /**
   * Share of one core the server used while the sockets opened (cpuSec ÷ openSec). Well under 1,
   * the load clients set the pace: connections/s then measures them more than the server.
   */
  serverCores: number;
  /** Lines the server logged from just before the sockets opened until they were closed (null: baseline). */
  logLines: number | null;
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
  cpuSec: number;
  cpuPerOpUs: number;
  /** Share of one core the server used (cpuSec ÷ the repeat's time). */
  serverCores: number;
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

/** The server's log line count once it has stopped growing (bounded: 2 s). */
async function settledLogLines(srv: ServerProc): Promise<number | null> {
  let last = srv.logLines();
  if (last === null) return null;
  for (let i = 0; i < 20; i++) {
    await Bun.sleep(100);
    const now = srv.logLines() ?? 0;
    if (now === last) break;
    last = now;
  }
  return last;
}

/**
 * N authenticated sockets, each joined to a room: open time, memory and CPU per socket, pulse.
 * RSS per socket is the growth from a reading taken with no bench sockets open (after a warm-up
 * whose sockets are closed again), so run it on a server that holds no other sockets. `load`
 * says whose sockets they are: one user each, or all on a few users.
 */
export function connections(
  s: Setup,
  srv: ServerProc,
  load: ConnectionsLoad,
): Promise<ConnectionsRun> {
  const c = s.profile.connections;
  return withAgents(s, c.clients, async (agents) => {
    const first = agents[0] as Agent;
    const warm = target(s, srv, load.warm);
    const warmRooms = names("warm", Math.max(1, Math.ceil(c.warmup / c.roomSize)));
    await first.call({ op: "rooms", target: warm, rooms: warmRooms, timeoutMs: 10_000 }, 20_000);
    await first.call(
      {
        op: "open",
        group: "warm",
        target: warm,
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
    const shares = sharesOf(c.n, agents.length);
    const targets = agents.map((_, k) => target(s, srv, load.perClient[k] ?? []));
    const rooms = shares.map((share, k) =>
      names(`c${k}`, Math.max(1, Math.ceil(share / c.roomSize))),
    );
    await Promise.all(
      agents.map((a, k) =>
        a.call(
          { op: "rooms", target: targets[k] as Target, rooms: rooms[k] ?? [], timeoutMs: 10_000 },
          20_000,
        ),
      ),
    );
    const rss0 = await settledRss(srv, s.profile.settle, () => s.quiet(`connections ${srv.name}`));
    const lines0 = await settledLogLines(srv);
    const cpu0 = cpuSeconds(srv.pid);
    const snap0 = cpuSnapshot(srv, agents);
    const t0 = performance.now();
    const opens = await Promise.all(
      agents.map((a, k) =>
        a.call(
          {
            op: "open",
            group: "c",
            target: targets[k] as Target,
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
    const lines1 = await settledLogLines(srv);
    const opened = opens.reduce((a, o) => a + o.opened, 0);
    const sum = (f: (p: PulseResult) => number) => pulses.reduce((a, p) => a + f(p), 0);
    const users = new Set(
      shares.flatMap((share, k) => {
        const list = load.perClient[k] ?? [];
        return list.slice(0, Math.min(share, list.length));
      }),
    ).size;
    return {
      shape: load.shape,
      n: c.n,
      users,
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
      serverCores: round((cpu1 - cpu0) / Math.max(1e-3, openMs / 1000), 2),
      logLines: lines0 === null || lines1 === null ? null : lines1 - lines0,
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
    cpuSec: round(cpu1 - cpu0, 2),
    cpuPerOpUs: round(((cpu1 - cpu0) * 1e6) / Math.max(1, r.ops), 1),
    serverCores: round((cpu1 - cpu0) / Math.max(1e-3, r.ms / 1000), 2),
  };
}
