// Every scenario, run against Kabar and the baseline in alternation (K, B, B, K, …) so that both
// see the same machine conditions; each headline figure is the median of the repeats (counts are
// sums), and every repeat is kept. Fan-out and noisy neighbour hold a group of sockets on each
// server from one client process; connections start a fresh server for every repeat (its RSS
// growth is then that repeat's own); churn repeats on one long-lived server per side.
import type { Agent } from "./agent.ts";
import type { FanoutCmd, FanoutResult, FloodResult } from "./commands.ts";
import {
  type ChurnRun,
  type ChurnScenario,
  type ConnectionsResult,
  type ConnectionsRun,
  churnOnce,
  connections,
  MiB,
  names,
  type RssReading,
  type Setup,
  settledRss,
  target,
  withAgents,
} from "./scenarios.ts";
import type { ServerProc } from "./servers.ts";
import { median, round } from "./stats.ts";

export interface FanoutRun extends FanoutResult {
  label: string;
  mode: "closed" | "rate";
  targetDeliveriesPerSec: number | null;
  cpuPerDeliveryUs: number;
  deliveriesPerCpuSec: number;
  /** Every repeat; the figures above are their medians (rates, latency) or sums (counts, CPU). */
  repeats: FanoutResult[];
}

export interface FanoutScenario {
  rooms: number;
  members: number;
  senders: number;
  window: number;
  runs: FanoutRun[];
}

export interface NoisyScenario {
  rooms: number;
  members: number;
  deliveriesPerSec: number;
  quiet: FanoutRun;
  noisy: FanoutRun;
  flood: FloodResult;
  p99Ratio: number;
}

export type Pair<T> = { kabar: T; baseline: T };

/** One figure from several repeats: medians for rates and latency, sums for counts and CPU. */
export function combine(
  label: string,
  mode: "closed" | "rate",
  rate: number | null,
  reps: FanoutResult[],
): FanoutRun {
  const sum = (f: (r: FanoutResult) => number) =>
    round(
      reps.reduce((a, r) => a + f(r), 0),
      2,
    );
  const med = (f: (r: FanoutResult) => number) => round(median(reps.map(f)));
  const deliveries = sum((r) => r.windowDeliveries);
  const cpu = sum((r) => r.serverCpuSec);
  return {
    label,
    mode,
    targetDeliveriesPerSec: rate,
    sent: sum((r) => r.sent),
    expected: sum((r) => r.expected),
    received: sum((r) => r.received),
    lost: sum((r) => r.lost),
    duplicates: sum((r) => r.duplicates),
    windowDeliveries: deliveries,
    windowMs: sum((r) => r.windowMs),
    deliveriesPerSec: Math.round(med((r) => r.deliveriesPerSec)),
    serverCpuSec: cpu,
    clientCpuSec: sum((r) => r.clientCpuSec),
    otherCpuSec: sum((r) => r.otherCpuSec),
    stealSec: sum((r) => r.stealSec),
    latency: {
      count: sum((r) => r.latency.count),
      meanMs: med((r) => r.latency.meanMs),
      p50Ms: med((r) => r.latency.p50Ms),
      p95Ms: med((r) => r.latency.p95Ms),
      p99Ms: med((r) => r.latency.p99Ms),
      maxMs: med((r) => r.latency.maxMs),
    },
    unexpectedCloses: sum((r) => r.unexpectedCloses),
    errorFrames: sum((r) => r.errorFrames),
    cpuPerDeliveryUs: deliveries ? round((cpu * 1e6) / deliveries, 3) : 0,
    deliveriesPerCpuSec: cpu > 0 ? Math.round(deliveries / cpu) : 0,
    repeats: reps,
  };
}

type Side = keyof Pair<unknown>;
/** K, B, B, K, K, B, …: neither server always goes first. */
const order = (rep: number): Side[] =>
  rep % 2 === 0 ? ["kabar", "baseline"] : ["baseline", "kabar"];

/** Connections repeats: medians of rates, times, RSS and CPU per connection; sums of counts. */
export function combineConnections(reps: ConnectionsRun[]): ConnectionsResult {
  const sum = (f: (r: ConnectionsRun) => number) => reps.reduce((a, r) => a + f(r), 0);
  const med = (f: (r: ConnectionsRun) => number, digits: number) =>
    round(median(reps.map(f)), digits);
  const n = reps[0]?.n ?? 0;
  return {
    n,
    attempted: sum((r) => r.n),
    opened: sum((r) => r.opened),
    failed: sum((r) => r.failed),
    openSec: med((r) => r.openSec, 3),
    connPerSec: Math.round(median(reps.map((r) => r.connPerSec))),
    rssBeforeMiB: med((r) => r.rssBeforeMiB, 1),
    rssAfterMiB: med((r) => r.rssAfterMiB, 1),
    rssPerConnKiB: med((r) => r.rssPerConnKiB, 2),
    rssAfterGc: reps.every((r) => r.rssAfterGc),
    cpuSec: round(
      sum((r) => r.cpuSec),
      2,
    ),
    cpuPerConnUs: med((r) => r.cpuPerConnUs, 1),
    otherCpuSec: round(
      sum((r) => r.otherCpuSec),
      2,
    ),
    stealSec: round(
      sum((r) => r.stealSec),
      2,
    ),
    pulse: {
      expected: sum((r) => r.pulse.expected),
      received: sum((r) => r.pulse.received),
      lost: sum((r) => r.pulse.lost),
      ms: med((r) => r.pulse.ms, 1),
    },
    errors: [...new Set(reps.flatMap((r) => r.errors))].slice(0, 10),
    repeats: reps,
  };
}

/** Churn repeats on one server: medians of rates and CPU per operation, sums of counts. */
export function combineChurn(
  reps: ChurnRun[],
  rss: { before: RssReading; after: RssReading },
): ChurnScenario {
  const sum = (f: (r: ChurnRun) => number) => reps.reduce((a, r) => a + f(r), 0);
  return {
    ops: sum((r) => r.ops),
    failed: sum((r) => r.failed),
    ms: round(
      sum((r) => r.ms),
      1,
    ),
    opsPerSec: Math.round(median(reps.map((r) => r.opsPerSec))),
    errors: [...new Set(reps.flatMap((r) => r.errors))].slice(0, 10),
    cpuPerOpUs: round(median(reps.map((r) => r.cpuPerOpUs)), 1),
    otherCpuSec: round(
      sum((r) => r.otherCpuSec),
      2,
    ),
    stealSec: round(
      sum((r) => r.stealSec),
      2,
    ),
    rssBeforeMiB: MiB(rss.before.bytes),
    rssAfterMiB: MiB(rss.after.bytes),
    rssAfterGc: rss.before.gc && rss.after.gc,
    repeats: reps,
  };
}

/**
 * N sockets opened on a server started for this repeat alone (and stopped after it), so RSS per
 * connection is measured from a server with no bench sockets and no freed-but-kept memory from an
 * earlier repeat; Kabar keeps its users across restarts (same DATA_DIR and SECRET_KEY).
 */
export async function connectionsPaired(
  s: Setup,
  start: Pair<() => Promise<ServerProc>>,
): Promise<Pair<ConnectionsResult>> {
  const repeats = s.profile.connections.repeats;
  const reps: Pair<ConnectionsRun[]> = { kabar: [], baseline: [] };
  for (let rep = 0; rep < repeats; rep++) {
    for (const side of order(rep)) {
      const srv = await start[side]();
      try {
        s.log(`  ${side}, repeat ${rep + 1}/${repeats} (server pid ${srv.pid})`);
        reps[side].push(await connections(s, srv));
      } finally {
        await srv.stop();
      }
    }
  }
  return { kabar: combineConnections(reps.kabar), baseline: combineConnections(reps.baseline) };
}

/**
 * connect … disconnect loops against each long-lived server in turn, from one client process;
 * each server's RSS is read (after a full GC) before its first repeat and after its last.
 */
export function churnPaired(s: Setup, servers: Pair<ServerProc>): Promise<Pair<ChurnScenario>> {
  const repeats = s.profile.churn.repeats;
  return withAgents(s, 1, async ([agent]) => {
    const a = agent as Agent;
    for (const srv of [servers.kabar, servers.baseline])
      await a.call(
        { op: "rooms", target: target(s, srv), rooms: ["churn"], timeoutMs: 10_000 },
        20_000,
      );
    // Both servers are idle here, so their readings can settle side by side.
    const readBoth = async () => {
      const [kabar, baseline] = await Promise.all([
        settledRss(servers.kabar, s.profile.settle),
        settledRss(servers.baseline, s.profile.settle),
      ]);
      return { kabar, baseline };
    };
    const before = await readBoth();
    const reps: Pair<ChurnRun[]> = { kabar: [], baseline: [] };
    for (let rep = 0; rep < repeats; rep++) {
      for (const side of order(rep)) {
        s.log(`  ${side}, repeat ${rep + 1}/${repeats}`);
        reps[side].push(await churnOnce(s, a, servers[side]));
      }
    }
    const after = await readBoth();
    return {
      kabar: combineChurn(reps.kabar, { before: before.kabar, after: after.kabar }),
      baseline: combineChurn(reps.baseline, { before: before.baseline, after: after.baseline }),
    };
  });
}

/** Opens `rooms` × `members` sockets on `srv` as client group `group`; any failure throws. */
async function openGroup(
  s: Setup,
  a: Agent,
  srv: ServerProc,
  group: string,
  rooms: string[],
  members: number,
): Promise<void> {
  const open = await a.call(
    {
      op: "open",
      group,
      target: target(s, srv),
      count: rooms.length * members,
      concurrency: 64,
      rooms,
      create: true,
      timeoutMs: 10_000,
    },
    120_000,
  );
  if (open.failed > 0)
    throw new Error(`${group} ${srv.name}: ${open.failed} sockets failed: ${open.errors[0]}`);
}

/** `openGroup` on both servers: groups `<prefix>-kabar` and `<prefix>-baseline`. */
async function openGroups(
  s: Setup,
  a: Agent,
  servers: Pair<ServerProc>,
  prefix: string,
  rooms: string[],
  members: number,
): Promise<void> {
  for (const side of ["kabar", "baseline"] as const)
    await openGroup(s, a, servers[side], `${prefix}-${side}`, rooms, members);
}

/**
 * R rooms × M members, S senders per room: closed loop, then each fixed rate. Every repeat runs
 * on a freshly started server with a fresh client process, for each side in turn: one process
 * pair can run 10–20% faster or slower than the next for no reason of its own (measured here),
 * so medians over independent pairs are fairer than repeats on one long-lived pair.
 */
export async function fanoutPaired(
  s: Setup,
  start: Pair<() => Promise<ServerProc>>,
): Promise<Pair<FanoutScenario>> {
  const f = s.profile.fanout;
  const rooms = names("f", f.rooms);
  const modes = [
    { label: "max (closed loop)", mode: "closed" as const, rate: null, ms: f.closedMs },
    ...f.rates.map((r) => ({
      label: r.label,
      mode: "rate" as const,
      rate: r.deliveriesPerSec,
      ms: f.rateMs,
    })),
  ];
  const reps = modes.map((): Pair<FanoutResult[]> => ({ kabar: [], baseline: [] }));
  for (let rep = 0; rep < f.repeats; rep++) {
    for (const side of order(rep)) {
      const srv = await start[side]();
      try {
        await withAgents(s, 1, async ([agent]) => {
          const a = agent as Agent;
          s.log(`  ${side}, repeat ${rep + 1}/${f.repeats} (server pid ${srv.pid})`);
          await openGroup(s, a, srv, "f", rooms, f.members);
          for (const [k, m] of modes.entries()) {
            await s.quiet(`fan-out ${m.label} ${side} #${rep + 1}`);
            const cmd: FanoutCmd = {
              op: "fanout",
              group: "f",
              senders: f.senders,
              mode: m.mode,
              window: f.window,
              deliveriesPerSec: m.rate ?? 0,
              warmupMs: f.warmupMs,
              durationMs: m.ms,
              drainMs: 10_000,
              maxMessages: f.maxMessages,
              serverPid: srv.pid,
            };
            reps[k]?.[side].push(await a.call(cmd, m.ms + 60_000));
          }
        });
      } finally {
        await srv.stop();
      }
    }
  }
  const scenario = (side: Side): FanoutScenario => ({
    rooms: f.rooms,
    members: f.members,
    senders: f.senders,
    window: f.window,
    runs: modes.map((m, k) => combine(m.label, m.mode, m.rate, reps[k]?.[side] ?? [])),
  });
  return { kabar: scenario("kabar"), baseline: scenario("baseline") };
}

/** Chatters at a fixed rate, quiet and beside one rate-limited user flooding junk; repeated. */
export function noisyPaired(s: Setup, servers: Pair<ServerProc>): Promise<Pair<NoisyScenario>> {
  const n = s.profile.noisy;
  return withAgents(s, 2, async ([chatAgent, floodAgent]) => {
    const chat = chatAgent as Agent;
    const flooder = floodAgent as Agent;
    const rooms = names("n", n.rooms);
    await openGroups(s, chat, servers, "n", rooms, n.members);
    const runs: Pair<{ quiet: FanoutResult[]; noisy: FanoutResult[]; flood: FloodResult[] }> = {
      kabar: { quiet: [], noisy: [], flood: [] },
      baseline: { quiet: [], noisy: [], flood: [] },
    };
    const floodMs = n.warmupMs + n.ms + 500;
    for (let rep = 0; rep < n.repeats; rep++) {
      for (const side of order(rep)) {
        const srv = servers[side];
        const cmd: FanoutCmd = {
          op: "fanout",
          group: `n-${side}`,
          senders: n.senders,
          mode: "rate",
          window: 1,
          deliveriesPerSec: n.deliveriesPerSec,
          warmupMs: n.warmupMs,
          durationMs: n.ms,
          drainMs: 10_000,
          maxMessages: 10_000_000,
          serverPid: srv.pid,
        };
        s.log(`  ${side}, repeat ${rep + 1}/${n.repeats}: quiet`);
        await s.quiet(`noisy/quiet ${side} #${rep + 1}`);
        runs[side].quiet.push(await chat.call(cmd, n.ms + 60_000));
        s.log(`  ${side}, repeat ${rep + 1}/${n.repeats}: beside the flooder`);
        await s.quiet(`noisy/flood ${side} #${rep + 1}`);
        const flooding = flooder.call(
          {
            op: "flood",
            target: target(s, srv, [s.flooderToken]),
            room: rooms[0] ?? "n_0",
            sockets: n.floodSockets,
            framesPerSec: n.floodFramesPerSec,
            malformedShare: 0.5,
            durationMs: floodMs,
          },
          floodMs + 60_000,
        );
        await Bun.sleep(200);
        runs[side].noisy.push(await chat.call(cmd, n.ms + 60_000));
        runs[side].flood.push(await flooding);
      }
    }
    const result = (side: Side): NoisyScenario => {
      const r = runs[side];
      const quiet = combine("quiet", "rate", n.deliveriesPerSec, r.quiet);
      const noisy = combine("noisy", "rate", n.deliveriesPerSec, r.noisy);
      const flood = r.flood.reduce((a, x) => ({
        sent: a.sent + x.sent,
        malformed: a.malformed + x.malformed,
        rateLimited: a.rateLimited + x.rateLimited,
        otherErrors: a.otherErrors + x.otherErrors,
        echoes: a.echoes + x.echoes,
        unexpectedCloses: a.unexpectedCloses + x.unexpectedCloses,
      }));
      return {
        rooms: n.rooms,
        members: n.members,
        deliveriesPerSec: n.deliveriesPerSec,
        quiet,
        noisy,
        flood,
        p99Ratio: quiet.latency.p99Ms > 0 ? round(noisy.latency.p99Ms / quiet.latency.p99Ms, 2) : 0,
      };
    };
    return { kabar: result("kabar"), baseline: result("baseline") };
  });
}
