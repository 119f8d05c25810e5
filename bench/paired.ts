// Every scenario, run against each server kind in rotation (K, B / B, K for two; for more, repeat
// k starts with the k-th kind, so each kind takes each place in turn) so that all see the same
// machine conditions; each headline figure is the median of the repeats (counts are sums, the
// latency max is the max of all repeats), and every repeat is kept. Connections and fan-out
// start a fresh server (and, for fan-out, a fresh client process) for every repeat; churn and
// noisy neighbour repeat on one long-lived server per side. A repeat that throws is recorded
// (Setup.fail) and left out; the targets count the missing repeat as a miss.
import type { Agent } from "./agent.ts";
import type { FanoutCmd, FanoutResult, FloodResult } from "./commands.ts";
import {
  type ChurnRun,
  type ChurnScenario,
  type ConnectionsLoad,
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

/** Whose sockets a fan-out run uses: the profile's few users, or one user per socket. */
export type FanoutLoadName = "shared users" | "one socket per user";

export interface FanoutRun extends FanoutResult {
  label: string;
  mode: "closed" | "rate";
  targetDeliveriesPerSec: number | null;
  load: FanoutLoadName;
  /** Senders per room, distinct users among the sockets, and what each message's content ends with. */
  senders: number;
  users: number;
  suffix: string;
  /** Messages per second each sender sends (rate mode), or null (closed loop). */
  perSenderMsgPerSec: number | null;
  cpuPerDeliveryUs: number;
  deliveriesPerCpuSec: number;
  /** Share of one core the server used in the measuring windows (server CPU ÷ window time). */
  serverCores: number;
  /** Repeats with no latency sample in their window: missing data, a target miss. */
  repeatsWithoutSamples: number;
  /** Every repeat; the figures above are their medians (rates, latency percentiles), their max (latency max) or sums (counts, CPU). */
  repeats: FanoutResult[];
}

export interface FanoutScenario {
  rooms: number;
  members: number;
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
  /** Others' p99 beside the flooder ÷ quiet; null when either run has no latency sample. */
  p99Ratio: number | null;
}

export type Pair<T> = { kabar: T; baseline: T };

/** What a fan-out run was: its label and mode, and the load it ran with. */
export interface FanoutMeta {
  label: string;
  mode: "closed" | "rate";
  rate: number | null;
  load: FanoutLoadName;
  senders: number;
  users: number;
  suffix: string;
  perSenderMsgPerSec: number | null;
}

/**
 * One figure from several repeats: medians for rates and latency percentiles, the max of the
 * maxima (the true max latency of all repeats), sums for counts and CPU.
 */
export function combine(meta: FanoutMeta, reps: FanoutResult[]): FanoutRun {
  const sum = (f: (r: FanoutResult) => number) =>
    round(
      reps.reduce((a, r) => a + f(r), 0),
      2,
    );
  const med = (f: (r: FanoutResult) => number) => round(median(reps.map(f)));
  const deliveries = sum((r) => r.windowDeliveries);
  const cpu = sum((r) => r.serverCpuSec);
  const windowMs = sum((r) => r.windowMs);
  return {
    label: meta.label,
    mode: meta.mode,
    targetDeliveriesPerSec: meta.rate,
    load: meta.load,
    senders: meta.senders,
    users: meta.users,
    suffix: meta.suffix,
    perSenderMsgPerSec: meta.perSenderMsgPerSec,
    sent: sum((r) => r.sent),
    expected: sum((r) => r.expected),
    received: sum((r) => r.received),
    lost: sum((r) => r.lost),
    duplicates: sum((r) => r.duplicates),
    windowDeliveries: deliveries,
    windowMs,
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
      maxMs: reps.length ? Math.max(...reps.map((r) => r.latency.maxMs)) : 0,
    },
    unexpectedCloses: sum((r) => r.unexpectedCloses),
    errorFrames: sum((r) => r.errorFrames),
    rateLimited: sum((r) => r.rateLimited ?? 0),
    botFrames: sum((r) => r.botFrames ?? 0),
    cpuPerDeliveryUs: deliveries ? round((cpu * 1e6) / deliveries, 3) : 0,
    deliveriesPerCpuSec: cpu > 0 ? Math.round(deliveries / cpu) : 0,
    serverCores: windowMs > 0 ? round((cpu * 1000) / windowMs, 2) : 0,
    repeatsWithoutSamples: reps.filter((r) => r.latency.count === 0).length,
    repeats: reps,
  };
}

type Side = "kabar" | "baseline";
/** K, B, B, K, K, B, …: neither server always goes first. */
const order = (rep: number): Side[] =>
  rep % 2 === 0 ? ["kabar", "baseline"] : ["baseline", "kabar"];

/** Repeat `rep`'s order of `sides`: two alternate (A B, B A); more rotate (A B C, B C A, …). */
export function rotation<T>(sides: readonly T[], rep: number): T[] {
  if (sides.length === 2) return rep % 2 === 0 ? [...sides] : [...sides].reverse();
  const k = sides.length ? rep % sides.length : 0;
  return [...sides.slice(k), ...sides.slice(0, k)];
}

/**
 * Connections repeats: medians of rates, times, RSS, CPU per connection and server cores; sums
 * of counts and log lines. Undefined when no repeat ran.
 */
export function combineConnections(reps: ConnectionsRun[]): ConnectionsResult | undefined {
  const r0 = reps[0];
  if (r0 === undefined) return undefined;
  const sum = (f: (r: ConnectionsRun) => number) => reps.reduce((a, r) => a + f(r), 0);
  const med = (f: (r: ConnectionsRun) => number, digits: number) =>
    round(median(reps.map(f)), digits);
  const lines = reps.map((r) => r.logLines);
  return {
    shape: r0.shape,
    n: r0.n,
    users: r0.users,
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
    serverCores: med((r) => r.serverCores, 2),
    logLines: lines.some((x) => x === null) ? null : sum((r) => r.logLines ?? 0),
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
    cpuSec: round(
      sum((r) => r.cpuSec),
      2,
    ),
    serverCores: round(median(reps.map((r) => r.serverCores)), 2),
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

/** One kind of server in the connections scenario: how to start it, and whose sockets it gets. */
export interface ConnectionsSide {
  key: string;
  start: () => Promise<ServerProc>;
  load: ConnectionsLoad;
}

/**
 * N sockets opened on a server started for this repeat alone (and stopped after it), so RSS per
 * connection is measured from a server with no bench sockets and no freed-but-kept memory from an
 * earlier repeat; Kabar keeps its users across restarts (same DATA_DIR and SECRET_KEY). The
 * sides take turns in rotation; a repeat that throws is recorded and left out.
 */
export async function connectionsPaired(
  s: Setup,
  sides: ConnectionsSide[],
): Promise<Record<string, ConnectionsResult | undefined>> {
  const repeats = s.profile.connections.repeats;
  const reps = new Map<string, ConnectionsRun[]>(sides.map((x) => [x.key, []]));
  for (let rep = 0; rep < repeats; rep++) {
    for (const side of rotation(sides, rep)) {
      const phase = `connections ${side.key} (${side.load.shape}) #${rep + 1}`;
      try {
        const srv = await side.start();
        try {
          s.log(`  ${side.key}, ${side.load.shape}, repeat ${rep + 1}/${repeats} (pid ${srv.pid})`);
          reps.get(side.key)?.push(await connections(s, srv, side.load));
        } finally {
          await srv.stop();
        }
      } catch (e) {
        s.fail(phase, e);
      }
    }
  }
  return Object.fromEntries(sides.map((x) => [x.key, combineConnections(reps.get(x.key) ?? [])]));
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
  tokens = s.tokens,
): Promise<void> {
  const open = await a.call(
    {
      op: "open",
      group,
      target: target(s, srv, tokens),
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

export interface FanoutMode {
  label: string;
  mode: "closed" | "rate";
  rate: number | null;
  ms: number;
  /** Senders per room; rate mode spreads the messages evenly over them. */
  senders: number;
}

/** The sockets of one fan-out group (rooms × members, socket i in room i % rooms) and its runs. */
export interface FanoutLoad {
  name: FanoutLoadName;
  /** Socket i uses tokens[i % tokens.length]. */
  tokens: string[];
  suffix: string;
  modes: FanoutMode[];
}

/**
 * The tuned rows' load: every socket on the profile's few users, `fanout.senders` per room,
 * closed loop and then each fixed rate.
 */
export function sharedFanoutLoad(s: Setup): FanoutLoad {
  const f = s.profile.fanout;
  return {
    name: "shared users",
    tokens: s.tokens,
    suffix: "",
    modes: [
      {
        label: "max (closed loop)",
        mode: "closed",
        rate: null,
        ms: f.closedMs,
        senders: f.senders,
      },
      ...f.rates.map((r) => ({
        label: r.label,
        mode: "rate" as const,
        rate: r.deliveriesPerSec,
        ms: f.rateMs,
        senders: f.senders,
      })),
    ],
  };
}

/** Senders per room that keep each sender at or under `perSender` messages/s at `rate` deliveries/s. */
export function sendersFor(p: Setup["profile"], rate: number, perSender: number): number {
  const f = p.fanout;
  const perRoom = rate / f.members / f.rooms;
  return Math.max(1, Math.min(f.members, Math.ceil(perRoom / perSender)));
}

/**
 * The default-settings row's load: one user per socket, and enough senders per room that no
 * sender exceeds `defaults.perSenderMsgPerSec` (under the default rate limit of 100 per 60 s);
 * every message holds a vowel (" halo"), so Kabar's bot answers each one.
 */
export function defaultsFanoutLoad(s: Setup): FanoutLoad {
  const f = s.profile.fanout;
  const d = s.profile.defaults;
  const senders = sendersFor(s.profile, d.rate.deliveriesPerSec, d.perSenderMsgPerSec);
  return {
    name: "one socket per user",
    tokens: s.perUser.slice(0, f.rooms * f.members),
    suffix: " halo",
    modes: [
      {
        label: d.rate.label,
        mode: "rate",
        rate: d.rate.deliveriesPerSec,
        ms: f.rateMs,
        senders,
      },
    ],
  };
}

/** One kind of server in the fan-out scenario, and the loads it runs (each on its own group). */
export interface FanoutSide {
  key: string;
  start: () => Promise<ServerProc>;
  loads: FanoutLoad[];
}

/**
 * R rooms × M members, S senders per room: each load's modes in turn (closed loop, fixed rates).
 * Every repeat runs on a freshly started server with a fresh client process, for each side in
 * turn: one process pair can run 10–20% faster or slower than the next for no reason of its own
 * (measured here), so medians over independent pairs are fairer than repeats on one long-lived
 * pair. A repeat that throws is recorded and left out; a side with no run is undefined.
 */
export async function fanoutPaired(
  s: Setup,
  sides: FanoutSide[],
): Promise<Record<string, FanoutScenario | undefined>> {
  const f = s.profile.fanout;
  const rooms = names("f", f.rooms);
  const reps = new Map<string, FanoutResult[]>();
  const key = (side: string, load: FanoutLoad, m: FanoutMode) =>
    `${side}\n${load.name}\n${m.label}`;
  for (let rep = 0; rep < f.repeats; rep++) {
    for (const side of rotation(sides, rep)) {
      try {
        const srv = await side.start();
        try {
          await withAgents(s, 1, async ([agent]) => {
            const a = agent as Agent;
            s.log(`  ${side.key}, repeat ${rep + 1}/${f.repeats} (server pid ${srv.pid})`);
            for (const [g, load] of side.loads.entries()) {
              const group = `f${g}`;
              await openGroup(s, a, srv, group, rooms, f.members, load.tokens);
              for (const m of load.modes) {
                await s.quiet(`fan-out ${m.label} ${side.key} #${rep + 1}`);
                const cmd: FanoutCmd = {
                  op: "fanout",
                  group,
                  senders: m.senders,
                  mode: m.mode,
                  window: f.window,
                  deliveriesPerSec: m.rate ?? 0,
                  warmupMs: f.warmupMs,
                  durationMs: m.ms,
                  drainMs: 10_000,
                  maxMessages: f.maxMessages,
                  serverPid: srv.pid,
                  suffix: load.suffix,
                };
                const result = await a.call(cmd, m.ms + 60_000);
                const k = key(side.key, load, m);
                reps.set(k, [...(reps.get(k) ?? []), result]);
              }
              await a.call({ op: "close", group, timeoutMs: 5000 }, 10_000);
            }
          });
        } finally {
          await srv.stop();
        }
      } catch (e) {
        s.fail(`fan-out ${side.key} #${rep + 1}`, e);
      }
    }
  }
  const scenario = (side: FanoutSide): FanoutScenario | undefined => {
    const runs: FanoutRun[] = [];
    for (const load of side.loads)
      for (const m of load.modes) {
        const got = reps.get(key(side.key, load, m)) ?? [];
        if (got.length === 0) continue;
        const perSender =
          m.rate === null ? null : round(m.rate / f.members / f.rooms / m.senders, 3);
        const users = new Set(load.tokens.slice(0, f.rooms * f.members)).size;
        const meta: FanoutMeta = {
          label: m.label,
          mode: m.mode,
          rate: m.rate,
          load: load.name,
          senders: m.senders,
          users,
          suffix: load.suffix,
          perSenderMsgPerSec: perSender,
        };
        runs.push(combine(meta, got));
      }
    if (runs.length === 0) return undefined;
    return { rooms: f.rooms, members: f.members, window: f.window, runs };
  };
  return Object.fromEntries(sides.map((x) => [x.key, scenario(x)]));
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
          suffix: "",
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
      const meta = (label: string): FanoutMeta => ({
        label,
        mode: "rate",
        rate: n.deliveriesPerSec,
        load: "shared users",
        senders: n.senders,
        users: s.tokens.length,
        suffix: "",
        perSenderMsgPerSec: round(n.deliveriesPerSec / n.members / n.rooms / n.senders, 3),
      });
      const quiet = combine(meta("quiet"), r.quiet);
      const noisy = combine(meta("noisy"), r.noisy);
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
        p99Ratio:
          quiet.latency.p99Ms > 0 &&
          quiet.repeatsWithoutSamples === 0 &&
          noisy.repeatsWithoutSamples === 0 &&
          r.quiet.length > 0 &&
          r.noisy.length > 0
            ? round(noisy.latency.p99Ms / quiet.latency.p99Ms, 2)
            : null,
      };
    };
    return { kabar: result("kabar"), baseline: result("baseline") };
  });
}
