// Floods: `npm run bench:floods` (full, about 4 minutes) or `bun bench/floods.ts tiny`. One
// Kabar (SQLite, the bench's tuned settings but with a rate limit: RATE_LIMIT_CAPACITY=200,
// RATE_LIMIT_REFILL_PER_SECOND=100, and the default WS_BACKPRESSURE_LIMIT_BYTES) pinned to one
// core, every load client in its own process on the other. Well-behaved clients
// (bench/steady-client.ts: R rooms × M members, one user per socket, the first `senders` of each
// room sending well under the rate limit) run through the whole bench; room 0 is the busy room
// every flood aims at. Windows of `windowMs`, each measuring the well-behaved deliveries' latency:
// 1. quiet — nothing else (and again just before each flood: the flood is compared with the
//    quiet window next to it, so that what the rest of the machine does in between cancels out);
// 2. flood — one user's sockets send valid and malformed frames as fast as `floodPerSec`
//    (bench/flood.ts, the noisy neighbour's client): the rate limit refuses most;
// 3. burst — 1,000 sockets open and join the busy room at once, stay, and all leave; four times:
//    the server's first burst (its paths not yet compiled by the JIT) is reported, then three more,
//    each beside its own quiet window, judged together: the p99 of the three burst windows'
//    deliveries pooled ÷ that of the three quiet windows' (each burst's own ratio reported) — one
//    12 s window's p99 is its ~12 worst messages, too few to judge a burst of ~0.3 s by;
// 4. slow reader — one more member keeps the busy room busy with long messages (already in the
//    quiet window this flood is compared with), then sockets in the room stop reading; the server
//    should close them at WS_BACKPRESSURE_LIMIT_BYTES;
// 5. open/close — one client connects and closes sockets as fast as it goes, from one address:
//    the server runs with a per-address connect limit (CONNECT_RATE_PER_IP, the default 100/s,
//    burst 1,000), which answers most of them 429 before the upgrade;
// 6. open/close, spread — the same client from `spreadSources` addresses, which the per-address
//    limit barely slows (what a client with many addresses does; reported, no target).
// Each flood's p99 ÷ the p99 of the quiet window before it (target ≤ 2×), and at the end every well-behaved member's seq
// list: nothing lost, repeated or unanswered, none refused.
// Then a reference for the burst, with the flood servers stopped (after one unmeasured burst: one
// room of 50 at the floods' rate for a window, alone and beside the same burst into it), and one room of `reference.members`
// at a fixed message rate, its members' p99, then the same with `reference.extra` more members
// in it (which only receive), on a bare `Bun.serve` (bench/baseline.ts) and on a fresh Kabar
// (tuned settings) in turn — what the same growth of a room does to a server that does no more
// than Bun's topics, measured in the same run. Writes
// bench/results/<stamp>-floods-<profile>.json and floods-latest(.json|.md) (full) or
// floods-latest-<profile>.* (tiny). For trying a change: BENCH_FLOODS_ONLY=burst (only these
// floods; no latest files), BENCH_FLOODS_REFERENCE=0 (no reference), BENCH_FLOODS_LAG=1 (the
// server's event loop probed every 1 ms, bench/gc-hook.ts: its stalls in each burst window).
import { existsSync, mkdtempSync, readFileSync } from "node:fs";
import { cpus, tmpdir } from "node:os";
import { join } from "node:path";
import { Agent } from "./agent.ts";
import { tracked } from "./cleanup.ts";
import { type KabarSource, kabarSource, loadAvg } from "./cluster.ts";
import type { FanoutCmd, FanoutResult, FloodResult, Target } from "./commands.ts";
import { LineAgent } from "./line-agent.ts";
import { type Machine, machine } from "./proc.ts";
import type { Failure, QuietWait, TargetCheck } from "./result.ts";
import { names } from "./scenarios.ts";
import { pinning, type ServerProc, startBaseline, startKabar } from "./servers.ts";
import {
  envChoice,
  failRecorder,
  latestOf,
  profileMain,
  progressLog,
  quietWaiter,
  runMain,
  shown,
  socketUsers,
  tidyTemp,
  tunedEnv,
  writeResults,
} from "./setup.ts";
import { endpoints, STEADY } from "./soak.ts";
import { partOf, round } from "./stats.ts";
import type {
  BurstResult,
  ChurnStopResult,
  SlowStatus,
  SteadyCollectResult,
  SteadyOpenResult,
  WindowLatency,
  WindowTail,
} from "./steady-client.ts";

const SERVER_CORE = 1;
const CLIENT_CORE = 0;
/** The attackers' processes (on the client core, beside the measuring client): nice 19. */
const ATTACKER = { nice: 19 } as const;
/** A burst's tail is split at its closes' start and this long after (the closes take ~20–40 ms). */
const CLOSES_MS = 250;
/** BENCH_FLOODS_LAG=1: event-loop gaps longer than this are stalls. */
const LAG_MS = 2;

export interface FloodsProfile {
  name: "full" | "tiny";
  rooms: number;
  members: number;
  senders: number;
  /** Well-behaved deliveries per second (each sender far under the rate limit). */
  deliveriesPerSec: number;
  windowMs: number;
  floodSockets: number;
  floodPerSec: number;
  burst: number;
  slowReaders: number;
  pump: { perSec: number; bytes: number };
  openCloseConcurrency: number;
  /** CONNECT_RATE_PER_IP of the server (the burst is 10×); every well-behaved client stays under. */
  connectRatePerIp: number;
  /** Source addresses of the spread open/close client. */
  spreadSources: number;
  quietWaitMs: number;
  hosts: number;
  sources: number;
  /** The burst's reference (see the top of this file). */
  reference: { members: number; extra: number; deliveriesPerSec: number; ms: number };
}

export const FLOODS_PROFILES: Record<FloodsProfile["name"], FloodsProfile> = {
  full: {
    name: "full",
    rooms: 10,
    members: 50,
    senders: 2,
    deliveriesPerSec: 5000,
    windowMs: 12_000,
    floodSockets: 4,
    floodPerSec: 5000,
    burst: 1000,
    slowReaders: 3,
    pump: { perSec: 90, bytes: 16_000 },
    openCloseConcurrency: 16,
    connectRatePerIp: 100,
    spreadSources: 200,
    quietWaitMs: 15_000,
    hosts: 8,
    sources: 8,
    // The busy room's shape: 50 members, 2 senders at 5 messages/s each, then the burst's 1,000.
    reference: { members: 50, extra: 1000, deliveriesPerSec: 500, ms: 6000 },
  },
  tiny: {
    name: "tiny",
    rooms: 2,
    members: 20,
    senders: 2,
    deliveriesPerSec: 400,
    windowMs: 1000,
    floodSockets: 2,
    floodPerSec: 1000,
    burst: 100,
    slowReaders: 1,
    pump: { perSec: 50, bytes: 4000 },
    openCloseConcurrency: 4,
    connectRatePerIp: 20,
    spreadSources: 20,
    quietWaitMs: 0,
    hosts: 2,
    sources: 2,
    reference: { members: 10, extra: 100, deliveriesPerSec: 100, ms: 1000 },
  },
};

export const FLOOD_PHASES = [
  "quiet",
  "flood",
  "burstFirst",
  "burst",
  "burst2",
  "burst3",
  "slow",
  "openClose",
  "openCloseSpread",
] as const;
export type FloodPhase = (typeof FLOOD_PHASES)[number];

export interface FloodsResult {
  version: 1;
  kind: "floods";
  kabar: KabarSource;
  profile: FloodsProfile["name"];
  startedAt: string;
  durationSec: number;
  machine: Machine;
  loadAvg: { start: number[]; end: number[] };
  pinned: boolean;
  settings: FloodsProfile;
  env: Record<string, string>;
  open?: SteadyOpenResult;
  /** The well-behaved deliveries' latency in each window. */
  windows: Partial<Record<FloodPhase, WindowLatency>>;
  /** The quiet window just before each flood (what its p99 is compared with). */
  quietBefore: Partial<Record<FloodPhase, WindowLatency>>;
  flood?: FloodResult;
  /** The server's first burst (cold), reported; then `burst`, `burst2`, `burst3`, judged together. */
  burstFirst?: BurstResult;
  burst?: BurstResult;
  burst2?: BurstResult;
  burst3?: BurstResult;
  /** The three judged bursts' windows pooled, and the quiet windows before them pooled. */
  pooled?: { quiet: WindowLatency; burst: WindowLatency };
  slow?: SlowStatus;
  openClose?: ChurnStopResult;
  openCloseSpread?: ChurnStopResult;
  /** BENCH_FLOODS_LAG=1: the server's event-loop stalls in each burst window. */
  stalls?: Partial<Record<FloodPhase, LoopStalls>>;
  /** The same in the quiet window before each burst (one part). */
  quietStalls?: Partial<Record<FloodPhase, LoopStalls>>;
  /** The burst's reference: the same room growth on bare Bun and on Kabar. */
  reference?: Partial<Record<ServerProc["name"], RoomGrowth>>;
  collect?: SteadyCollectResult;
  failures: Failure[];
  targets: TargetCheck[];
  background: QuietWait[];
}

const PHASE_NAMES: Record<Exclude<FloodPhase, "quiet">, string> = {
  flood: "one user flooding (rate-limited)",
  burstFirst:
    "the server's first 1,000-member burst into the busy room (its join and leave paths not yet compiled)",
  burst: "a 1,000-member burst into the busy room (the first of three judged together)",
  burst2: "a 1,000-member burst into the busy room (the second of three)",
  burst3: "a 1,000-member burst into the busy room (the third of three)",
  slow: "slow readers in the busy room",
  openClose: "a client opening and closing sockets as fast as it can, from one address",
  openCloseSpread: "the same client from many addresses",
};

/** One server's room before and after it grew (its first members' deliveries only). */
export interface RoomGrowth {
  small: FanoutResult;
  big: FanoutResult;
  /** At the floods' rate for a window: the room alone, then beside the floods' burst into it. */
  calm: FanoutResult;
  burst: FanoutResult;
}

/** Floods a per-client target does not apply to: reported only. */
const REPORTED_ONLY: ReadonlySet<FloodPhase> = new Set([
  "burstFirst",
  "burst",
  "burst2",
  "burst3",
  "openCloseSpread",
]);
/** The judged bursts: their windows are pooled, and so are the quiet windows before them. */
const JUDGED_BURSTS = ["burst", "burst2", "burst3"] as const;

/** The spread open/close client's source addresses: 127.0.2.1, 127.0.2.2, … */
export const spreadSources = (n: number): string[] =>
  Array.from({ length: n }, (_, k) => `127.0.${2 + Math.floor(k / 250)}.${(k % 250) + 1}`);

/**
 * A burst window's parts, split at its marks: before the opens, during them, while the sockets
 * stayed, the first CLOSES_MS of their closes, the rest of the window.
 */
function burstParts(marks: number[], windowMs: number): string[] {
  const [start = 0, opened = 0, leave = 0] = marks;
  return [
    "before the opens",
    `during the opens (${round(opened - start, 1)} ms)`,
    `while the sockets stayed (${round((leave - opened) / 1000, 1)} s)`,
    `the first ${CLOSES_MS} ms of their closes`,
    `the rest of the window (~${round(windowMs / 4000 - CLOSES_MS / 1000, 2)} s)`,
  ];
}

/** Where a burst window's tail was sent, by the parts of the window. */
function tailRow(name: string, t: WindowTail, windowMs: number): TargetCheck {
  const parts = burstParts(t.marks, windowMs).map(
    (label, k) => `${label} ${t.deliveries[k] ?? 0} (${t.messages[k] ?? 0})`,
  );
  return {
    name: `where the tail of ${name} was sent: its deliveries at or over the window's p99 (their messages), by send time`,
    target: "reported",
    measured: `≥ ${t.atLeastMs} ms: ${parts.join("; ")}`,
    met: null,
  };
}

/** The server's event-loop stalls (BENCH_FLOODS_LAG=1) in a burst window, by its parts. */
export interface LoopStalls {
  overMs: number;
  marks: number[];
  count: number[];
  maxMs: number[];
  sumMs: number[];
  /**
   * Of the stalls' time, how long the loop's thread waited, runnable, for its core (another
   * process or a kernel thread had it), and how long the server's other threads ran (garbage
   * collector, JIT compiler); absent where the probe could not tell (not Linux).
   */
  waitedMs?: number[];
  othersMs?: number[];
}

/** The stalls the server's lag probe wrote (bench/gc-hook.ts) from `from` until `to`, by the marks. */
export function stallsOf(
  file: string,
  overMs: number,
  from: number,
  marks: number[],
  to = Number.POSITIVE_INFINITY,
): LoopStalls {
  const text = existsSync(file) ? readFileSync(file, "utf8") : "";
  const zero = () => new Array<number>(marks.length + 1).fill(0);
  const out: LoopStalls = { overMs, marks, count: zero(), maxMs: zero(), sumMs: zero() };
  const waited = zero();
  const others = zero();
  let split = true;
  for (const line of text.split("\n")) {
    const [a, b, c, d, e] = line.split(" ");
    const at = Number(a);
    const ms = Number(b);
    if (a === undefined || b === undefined || !Number.isFinite(at) || !Number.isFinite(ms))
      continue;
    if (at < from || at >= to) continue;
    const k = partOf(at, marks);
    out.count[k] = (out.count[k] ?? 0) + 1;
    out.sumMs[k] = round((out.sumMs[k] ?? 0) + ms, 2);
    out.maxMs[k] = Math.max(out.maxMs[k] ?? 0, ms);
    // `<ran> <waited> <process cpu>` (bench/gc-hook.ts); -1 or missing: not known.
    const [ran, wait, cpu] = [c, d, e].map((x) => (x === undefined ? Number.NaN : Number(x)));
    if (ran === undefined || wait === undefined || cpu === undefined || !(ran >= 0)) split = false;
    else {
      waited[k] = round((waited[k] ?? 0) + wait, 2);
      others[k] = round((others[k] ?? 0) + Math.max(0, cpu - ran), 2);
    }
  }
  return split ? { ...out, waitedMs: waited, othersMs: others } : out;
}

function stallsRow(
  name: string,
  st: LoopStalls,
  windowMs: number,
  quiet?: LoopStalls,
): TargetCheck {
  const part = (s: LoopStalls, k: number) => {
    const n = s.count[k] ?? 0;
    if (n === 0) return "0";
    const split =
      s.waitedMs === undefined || s.othersMs === undefined
        ? ""
        : `; the loop waiting for its core ${s.waitedMs[k] ?? 0} ms, the server's other threads running ${s.othersMs[k] ?? 0} ms`;
    return `${n} (longest ${s.maxMs[k]}, in all ${s.sumMs[k]} ms${split})`;
  };
  const parts = burstParts(st.marks, windowMs).map((label, k) => `${label} ${part(st, k)}`);
  if (quiet !== undefined)
    parts.push(`the quiet window before (${windowMs / 1000} s) ${part(quiet, 0)}`);
  return {
    name: `the server's event-loop stalls over ${st.overMs} ms beside ${name} (lag probe, BENCH_FLOODS_LAG=1)`,
    target: "reported",
    measured: parts.join("; "),
    met: null,
  };
}

/** The judged bursts together: the pooled windows' p99 ÷ the pooled quiet windows' (≤ 2×). */
function pooledRows(r: FloodsResult, fail: string[]): TargetCheck[] {
  const n = r.settings.burst.toLocaleString("en-US");
  const what = `the three judged ${n}-member bursts into the busy room (their windows pooled)`;
  const each = JUDGED_BURSTS.map((ph) => {
    const q = r.quietBefore?.[ph];
    const w = r.windows[ph];
    return q !== undefined && w !== undefined && q.count > 0 && w.count > 0
      ? `${round(w.p99Ms / q.p99Ms, 2)}×`
      : "–";
  }).join(", ");
  const p = r.pooled;
  const ok = p !== undefined && p.quiet.count > 0 && p.burst.count > 0;
  const ratio = ok ? p.burst.p99Ms / p.quiet.p99Ms : Number.NaN;
  const rows: TargetCheck[] = [
    {
      name: `others' p99 beside ${what} ÷ the quiet windows before them (pooled)`,
      target: "≤ 2×",
      measured: ok
        ? `${round(ratio, 2)}× (${p.burst.p99Ms} ms vs ${p.quiet.p99Ms} ms over ${p.burst.count} and ${p.quiet.count} deliveries; max ${p.burst.maxMs} ms; the three alone: ${each})`
        : [...fail, "MISSING pooled windows"].join("; "),
      met: ok && fail.length === 0 ? ratio <= 2 : false,
    },
  ];
  const qo = p?.quiet.outside;
  const wo = p?.burst.outside;
  if (qo !== undefined && wo !== undefined && qo.count > 0 && wo.count > 0)
    rows.push({
      name: `others outside the busy room: p99 beside ${what} ÷ the quiet windows before them (pooled)`,
      target: "reported",
      measured: `${round(wo.p99Ms / qo.p99Ms, 2)}× (${wo.p99Ms} ms vs ${qo.p99Ms} ms)`,
      met: null,
    });
  return rows;
}

export function checkFloodsTargets(r: FloodsResult): TargetCheck[] {
  const fail = r.failures.map((f) => `${f.phase} threw: ${f.error.slice(0, 100)}`);
  const out: TargetCheck[] = [];
  for (const phase of FLOOD_PHASES) {
    if (phase === "quiet") continue;
    const quiet = r.quietBefore?.[phase];
    const w = r.windows[phase];
    const ok = quiet !== undefined && w !== undefined && quiet.count > 0 && w.count > 0;
    const ratio = ok ? w.p99Ms / quiet.p99Ms : Number.NaN;
    const name = PHASE_NAMES[phase].replace("1,000", r.settings.burst.toLocaleString("en-US"));
    const reported = REPORTED_ONLY.has(phase);
    out.push({
      name: `others' p99 beside ${name} ÷ the quiet window before it`,
      target: reported ? "reported" : "≤ 2×",
      measured: ok
        ? `${round(ratio, 2)}× (${w.p99Ms} ms vs ${quiet.p99Ms} ms)`
        : [...fail, "MISSING window"].join("; "),
      met: reported ? (ok ? null : false) : ok && fail.length === 0 ? ratio <= 2 : false,
    });
    // The same without the busy room's own members: what the flood does to the rest of the
    // server (a burst makes the busy room itself 21× bigger, and each of its messages as dear).
    const qo = quiet?.outside;
    const wo = w?.outside;
    if (qo !== undefined && wo !== undefined && qo.count > 0 && wo.count > 0)
      out.push({
        name: `others outside the busy room: p99 beside ${name} ÷ the quiet window before it`,
        target: "reported",
        measured: `${round(wo.p99Ms / qo.p99Ms, 2)}× (${wo.p99Ms} ms vs ${qo.p99Ms} ms)`,
        met: null,
      });
    const tail = w?.tail;
    if (tail !== undefined) out.push(tailRow(name, tail, r.settings.windowMs));
    const st = r.stalls?.[phase];
    const qst = r.quietStalls?.[phase];
    if (st !== undefined) out.push(stallsRow(name, st, r.settings.windowMs, qst));
    if (phase === "burst3") out.push(...pooledRows(r, fail));
  }
  const c = r.collect;
  const refused = c ? Object.values(c.refused).reduce((a, b) => a + b, 0) : 0;
  out.push({
    name: "well-behaved clients: messages lost, repeated, unanswered, refused; sockets closed",
    target: "0",
    measured: c
      ? `lost ${c.lost}, duplicates ${c.duplicates}, unanswered ${c.unanswered}, refused ${refused}, closed ${c.closed} of ${c.sockets}; ${c.deliveries} deliveries`
      : [...fail, "MISSING collect"].join("; "),
    met:
      c !== undefined &&
      fail.length === 0 &&
      c.lost + c.duplicates + c.unanswered + refused + c.closed === 0 &&
      c.deliveries > 0,
  });
  const f = r.flood;
  out.push({
    name: "the flooder is refused by the rate limit",
    target: "most frames rate_limited, its sockets kept",
    measured: f
      ? `${f.rateLimited} of ${f.sent} frames rate_limited, ${f.echoes} echoed, ${f.unexpectedCloses} closed`
      : "MISSING",
    met: f !== undefined && f.rateLimited > f.sent / 2,
  });
  for (const name of ["baseline", "kabar"] as const) {
    const g = r.reference?.[name];
    const who = name === "baseline" ? "bare Bun.serve" : "Kabar";
    const s = r.settings;
    out.push({
      name: `reference: ${who}, one room of ${s.reference.members} at ${s.deliveriesPerSec} deliveries/s beside ${s.burst} sockets joining it at once, staying ${s.windowMs / 2000} s and leaving — its members' p99 ÷ the room alone`,
      target: "reported",
      measured: g
        ? `${round(g.burst.latency.p99Ms / g.calm.latency.p99Ms, 2)}× (${g.burst.latency.p99Ms} ms vs ${g.calm.latency.p99Ms} ms; lost ${g.calm.lost + g.burst.lost})`
        : [...fail, "MISSING"].join("; "),
      met: g === undefined ? false : null,
    });
    out.push({
      name: `reference: ${who}, one room of ${r.settings.reference.members} growing by ${r.settings.reference.extra} members — its members' p99 after ÷ before`,
      target: "reported",
      measured: g
        ? `${round(g.big.latency.p99Ms / g.small.latency.p99Ms, 2)}× (${g.big.latency.p99Ms} ms vs ${g.small.latency.p99Ms} ms; lost ${g.small.lost + g.big.lost})`
        : [...fail, "MISSING"].join("; "),
      met: g === undefined ? false : null,
    });
  }
  const oc = r.openClose;
  out.push({
    name: "the one-address open/close client is held to CONNECT_RATE_PER_IP",
    target: "the rest answered 429, no other failure",
    measured: oc
      ? `${oc.ops} opened and closed, ${oc.limited} answered 429, ${oc.failed - oc.limited} failed otherwise`
      : "MISSING",
    met: oc !== undefined && oc.limited > 0 && oc.failed === oc.limited,
  });
  const s = r.slow;
  out.push({
    name: "slow readers closed by the server (backpressure)",
    target: "reported",
    measured: s
      ? `${s.closedByServer} of ${s.opened} (${s.pumped} long messages pumped)`
      : "MISSING",
    met: s === undefined ? false : null,
  });
  return out;
}

export function floodsMarkdown(r: FloodsResult): string {
  const p = r.settings;
  const lines = [
    `# Floods (${r.profile}) — ${r.startedAt}, commit ${r.kabar.commit ?? "?"}`,
    "",
    `${p.rooms * p.members} well-behaved sockets (${p.rooms} rooms × ${p.members}), ${p.deliveriesPerSec} deliveries/s; windows of ${p.windowMs / 1000} s. Run took ${r.durationSec} s.`,
    "",
    "| window | deliveries | p50 (ms) | p99 (ms) | max (ms) | quiet before: p99 (ms) | outside the busy room: p99 (ms) | quiet before, outside: p99 (ms) |",
    "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ...FLOOD_PHASES.map((ph) => {
      const w = r.windows[ph];
      const q = r.quietBefore?.[ph];
      return `| ${ph} | ${w?.count ?? "–"} | ${w?.p50Ms ?? "–"} | ${w?.p99Ms ?? "–"} | ${w?.maxMs ?? "–"} | ${q?.p99Ms ?? "–"} | ${w?.outside?.p99Ms ?? "–"} | ${q?.outside?.p99Ms ?? "–"} |`;
    }),
    "",
    "| target | wanted | measured | met |",
    "| --- | --- | --- | --- |",
    ...r.targets.map(
      (t) =>
        `| ${t.name} | ${t.target} | ${t.measured} | ${t.met === null ? "–" : t.met ? "yes" : "**no**"} |`,
    ),
  ];
  const bursts = (["burstFirst", ...JUDGED_BURSTS] as const).flatMap((ph) => {
    const b = r[ph];
    return b === undefined ? [] : [`${b.opened} opened (${b.failed} failed) in ${b.openMs} ms`];
  });
  if (bursts.length > 0)
    lines.push(
      "",
      `Bursts, in turn: ${bursts.join("; ")}. ${churnLine("Open/close, one address", r.openClose)} ${churnLine(`Open/close, ${p.spreadSources} addresses`, r.openCloseSpread)}`,
    );
  if (r.failures.length)
    lines.push("", ...r.failures.map((f) => `- FAILED ${f.phase}: ${f.error}`));
  return `${lines.join("\n")}\n`;
}

function churnLine(what: string, c: ChurnStopResult | undefined): string {
  if (c === undefined) return `${what}: –.`;
  const attempts = c.ops + c.failed;
  return `${what}: ${c.ops} ops at ${c.opsPerSec}/s, ${c.limited} answered 429 (${Math.round((attempts * 1000) / c.ms)} attempts/s), ${c.failed - c.limited} failed otherwise.`;
}

export async function runFloods(opts: {
  profile: FloodsProfile["name"];
  outDir: string;
  writeLatest: boolean;
  progress: boolean;
}): Promise<{ result: FloodsResult; files: string[] }> {
  const p = withBurst(FLOODS_PROFILES[opts.profile], process.env.BENCH_FLOODS_BURST);
  const started = new Date();
  const load0 = loadAvg();
  const t0 = performance.now();
  const log = progressLog("floods", opts.progress, t0);
  const pinned = pinning && cpus().length >= 2;
  const core = (c: number) => (pinned ? c : -1);
  const tmp = mkdtempSync(join(tmpdir(), "kabar-bench-floods-"));
  const dataDir = join(tmp, "data");
  const kabarEnv = {
    ...tunedEnv(dataDir),
    RATE_LIMIT_CAPACITY: "200",
    RATE_LIMIT_REFILL_PER_SECOND: "100",
    WS_BACKPRESSURE_LIMIT_BYTES: "1048576",
    ROOM_HISTORY_SIZE: "100",
    // What a server on its defaults has: the open/close client is held to it, and every
    // well-behaved client stays far under it (8 source addresses).
    CONNECT_RATE_PER_IP: String(p.connectRatePerIp),
  };
  const failures: Failure[] = [];
  const background: QuietWait[] = [];
  const fail = failRecorder(failures, log);
  const quiet = quietWaiter(p.quietWaitMs, background, log);
  const out: Partial<FloodsResult> = {};
  const windows: FloodsResult["windows"] = {};
  const quietBefore: FloodsResult["quietBefore"] = {};
  /** BENCH_FLOODS_LAG=1: the server's event loop probed every 1 ms (bench/gc-hook.ts). */
  const lagFile = process.env.BENCH_FLOODS_LAG === "1" ? join(tmp, "lag.txt") : null;
  const stalls: NonNullable<FloodsResult["stalls"]> = {};
  const quietStalls: NonNullable<FloodsResult["quietStalls"]> = {};
  const stops: (() => Promise<void>)[] = [];
  const steadyN = p.rooms * p.members;
  // Token ranges: steady members, the burst, the slow readers and their pump, the flooder, the
  // open/close client.
  const at = {
    burst: steadyN,
    slow: steadyN + p.burst,
    flood: steadyN + p.burst + p.slowReaders + 1,
    openClose: steadyN + p.burst + p.slowReaders + 2,
  };
  const serverOpts = (name: string) => ({
    core: core(SERVER_CORE),
    logFile: join(tmp, `${name}.log`),
    gcDir: tmp,
  });
  /** BENCH_FLOODS_ONLY=burst,openClose: only these floods (for trying a change; no latest files). */
  const only = onlyPhases();
  /** The users' tokens and database, for the reference's servers. */
  let users: { tokens: string[]; dbUrl: string } | null = null;
  try {
    log(`profile ${p.name}; ${pinned ? "pinned" : "not pinned"}; temp ${tmp}`);
    const { tokensFile, dbUrl } = await socketUsers({
      env: kabarEnv,
      dataDir,
      tmp,
      count: at.openClose + 1,
      prefix: "floods",
      server: serverOpts("admin"),
    });
    const server = await startKabar(
      {
        ...kabarEnv,
        DATABASE_URL: dbUrl,
        ...(lagFile === null ? {} : { BENCH_LAG_FILE: lagFile, BENCH_LAG_MS: String(LAG_MS) }),
      },
      serverOpts("kabar"),
    );
    stops.push(tracked(() => server.stop()));
    const ends = endpoints(p, [server.port]);
    // The attackers run at nice 19 on the client core: what is measured is what they do to
    // the server, not to the well-behaved clients' own process beside them.
    const client = (name: string, attacker = false) => {
      const a = LineAgent.start(`floods-${name}`, STEADY, {
        core: core(CLIENT_CORE),
        progress: opts.progress,
        ...(attacker ? ATTACKER : {}),
      });
      stops.push(tracked(() => a.stop()));
      return a;
    };
    const steady = client("steady");
    const rooms = names("floods", p.rooms);
    const busy = rooms[0] as string;
    out.open = await steady.call<SteadyOpenResult>(
      {
        op: "open",
        ...ends,
        file: tokensFile,
        tokenOffset: 0,
        rooms,
        members: p.members,
        senders: p.senders,
        create: rooms,
        concurrency: 64,
        timeoutMs: 15_000,
      },
      120_000,
    );
    if (out.open.failed > 0) throw new Error(`${out.open.failed} failed: ${out.open.errors[0]}`);
    log(`opened ${out.open.opened} well-behaved sockets`);
    const total = 2 * FLOOD_PHASES.length * (p.windowMs + p.quietWaitMs + 5000) + 30_000;
    await steady.call(
      { op: "send", msgPerSec: p.deliveriesPerSec / p.members, maxMs: total },
      10_000,
    );
    await Bun.sleep(Math.min(2000, p.windowMs));
    /**
     * `prepare`: what the flood's quiet window already has (the slow readers' busy room);
     * `marks`: wall-clock times to split the window's tail at, once `during` is over.
     */
    const window = async (
      phase: FloodPhase,
      during: () => Promise<void>,
      prepare?: () => Promise<void>,
      marks?: () => number[] | undefined,
      pool?: string,
    ) => {
      // BENCH_FLOODS_ONLY=burst runs every burst (the first is the others' warm-up).
      const name = phase.startsWith("burst") ? "burst" : phase;
      if (phase !== "quiet" && only !== null && !only.includes(name)) return;
      try {
        await quiet(phase);
        await prepare?.();
        if (phase !== "quiet") {
          const from = performance.timeOrigin + performance.now();
          await steady.call<WindowLatency>({ op: "window" }, 10_000);
          await Bun.sleep(p.windowMs);
          quietBefore[phase] = await steady.call<WindowLatency>(
            { op: "window", pool: pool === undefined ? undefined : `quiet:${pool}` },
            10_000,
          );
          const to = performance.timeOrigin + performance.now();
          if (lagFile !== null && marks !== undefined)
            quietStalls[phase] = stallsOf(lagFile, LAG_MS, from, [], to);
        }
        const from = performance.timeOrigin + performance.now();
        await steady.call<WindowLatency>({ op: "window" }, 10_000);
        await during();
        const m = marks?.();
        const w = await steady.call<WindowLatency>({ op: "window", marks: m, pool }, 10_000);
        windows[phase] = w;
        if (lagFile !== null && m !== undefined) stalls[phase] = stallsOf(lagFile, LAG_MS, from, m);
        log(`${phase}: p99 ${w.p99Ms} ms over ${w.count} deliveries`);
      } catch (e) {
        fail(phase, e);
      }
    };
    await window("quiet", () => Bun.sleep(p.windowMs));
    const tokens = (JSON.parse(readFileSync(tokensFile, "utf8")) as { tokens: string[] }).tokens;
    users = { tokens, dbUrl };
    const flooder = Agent.start("floods-flooder", {
      core: core(CLIENT_CORE),
      progress: opts.progress,
      ...ATTACKER,
    });
    stops.push(tracked(() => flooder.stop()));
    await window("flood", async () => {
      out.flood = await flooder.call(
        {
          op: "flood",
          target: { hosts: ends.hosts, port: server.port, tokens: [tokens[at.flood] as string] },
          room: busy,
          sockets: p.floodSockets,
          framesPerSec: p.floodPerSec,
          malformedShare: 0.1,
          durationMs: p.windowMs,
        },
        p.windowMs + 30_000,
      );
    });
    const burster = client("burst", true);
    // Four times: the first burst after the server started meets its connect, join and leave
    // paths not yet compiled by the JIT (a thousand closes at once ran about twice as long then,
    // on this project's VM), which a server that has been up a while has long compiled; the first
    // is reported, the other three judged together (their windows pooled).
    for (const phase of ["burstFirst", ...JUDGED_BURSTS] as const)
      await window(
        phase,
        async () => {
          out[phase] = await burster.call<BurstResult>(
            {
              op: "burst",
              ...ends,
              file: tokensFile,
              tokenOffset: at.burst,
              count: p.burst,
              room: busy,
              concurrency: p.burst,
              holdMs: p.windowMs / 2,
              timeoutMs: 20_000,
            },
            p.windowMs + 60_000,
          );
          // The rest of the window: the burst's sockets leaving.
          await Bun.sleep(p.windowMs / 4);
        },
        undefined,
        () => {
          const at = out[phase]?.at;
          return at === undefined
            ? undefined
            : [at.start, at.opened, at.leave, at.leave + CLOSES_MS];
        },
        phase === "burstFirst" ? undefined : "burst",
      );
    if (only === null || only.includes("burst"))
      try {
        out.pooled = {
          quiet: await steady.call<WindowLatency>({ op: "pool", name: "quiet:burst" }, 10_000),
          burst: await steady.call<WindowLatency>({ op: "pool", name: "burst" }, 10_000),
        };
      } catch (e) {
        fail("burst", e);
      }
    const slow = client("slow", true);
    const slowCmd = {
      ...ends,
      file: tokensFile,
      tokenOffset: at.slow,
      count: p.slowReaders,
      room: busy,
      pump: { ...p.pump, maxMs: 2 * p.windowMs + p.quietWaitMs + 10_000 },
      timeoutMs: 10_000,
    };
    await window(
      "slow",
      async () => {
        await slow.call({ op: "slow", ...slowCmd }, 30_000);
        await Bun.sleep(p.windowMs);
        out.slow = await slow.call<SlowStatus>({ op: "slowStatus" }, 10_000);
      },
      // Its quiet window is the busy room alone: the pump runs, no reader is slow yet.
      () => slow.call({ op: "pump", ...slowCmd }, 30_000),
    );
    const openClose = client("open-close", true);
    /** Connect → welcome → close as fast as 16 in flight go, from `sources`, for one window. */
    const openCloseWindow = (phase: "openClose" | "openCloseSpread", sources: string[]) =>
      window(phase, async () => {
        await openClose.call(
          {
            op: "churn",
            ...ends,
            sources,
            file: tokensFile,
            tokenOffset: at.openClose,
            users: 1,
            rooms: [],
            ratePerSec: 0,
            concurrency: p.openCloseConcurrency,
            join: false,
            maxMs: p.windowMs,
            maxOps: 1_000_000,
            timeoutMs: 10_000,
          },
          10_000,
        );
        await Bun.sleep(p.windowMs);
        out[phase] = await openClose.call<ChurnStopResult>({ op: "churnStop" }, 30_000);
      });
    await openCloseWindow("openClose", ["127.0.1.1"]);
    await openCloseWindow("openCloseSpread", spreadSources(p.spreadSources));
    out.collect = await steady.call<SteadyCollectResult>(
      { op: "collect", drainMs: 10_000 },
      30_000,
    );
    const c = out.collect;
    log(
      `lost ${c.lost}, duplicates ${c.duplicates}, unanswered ${c.unanswered}, closed ${c.closed}`,
    );
  } catch (e) {
    fail("floods", e);
  } finally {
    for (const s of stops.splice(0).reverse()) await s();
  }
  // BENCH_FLOODS_REFERENCE=0: no reference (for trying a change to the burst quickly).
  const reference = process.env.BENCH_FLOODS_REFERENCE !== "0";
  if (reference && users !== null && (only === null || only.includes("burst"))) {
    for (const name of ["baseline", "kabar"] as const) {
      try {
        await quiet(`reference ${name}`);
        const env = { ...tunedEnv(dataDir), DATABASE_URL: users.dbUrl };
        const server =
          name === "baseline"
            ? await startBaseline(env, serverOpts(`reference-${name}`))
            : await startKabar(env, serverOpts(`reference-${name}`));
        const stop = tracked(() => server.stop());
        try {
          const hosts = endpoints(p, [server.port]).hosts;
          const growth = await roomGrowth(server, users.tokens, hosts, p, {
            core: core(CLIENT_CORE),
            progress: opts.progress,
          });
          out.reference = { ...out.reference, [name]: growth };
          log(
            `reference ${name}: p99 ${growth.small.latency.p99Ms} → ${growth.big.latency.p99Ms} ms`,
          );
        } finally {
          await stop();
        }
      } catch (e) {
        fail(`reference ${name}`, e);
      }
    }
  }
  const result: FloodsResult = {
    version: 1,
    kind: "floods",
    kabar: kabarSource(),
    profile: p.name,
    startedAt: started.toISOString(),
    durationSec: round((performance.now() - t0) / 1000, 1),
    machine: machine(),
    loadAvg: { start: load0, end: loadAvg() },
    pinned,
    settings: p,
    env: shown(kabarEnv, tmp),
    ...out,
    windows,
    quietBefore,
    ...(lagFile === null ? {} : { stalls, quietStalls }),
    failures,
    targets: [],
    background,
  };
  result.targets = checkFloodsTargets(result);
  const files = writeResults(
    opts.outDir,
    started,
    `floods-${p.name}`,
    result,
    opts.writeLatest
      ? { name: latestOf("floods", p.name), files: () => [["md", floodsMarkdown(result)]] }
      : null,
  );
  tidyTemp(tmp, failures, log);
  return { result, files };
}

/**
 * One room of `reference.members` on `server` at a fixed message rate (its 2 first members send):
 * their deliveries' latency, then again once `reference.extra` more sockets joined it. Before
 * that, the burst's own reference: the room at the floods' rate for a window, alone and then
 * beside `p.burst` sockets joining it at once, staying half the window and leaving (as the
 * floods' judged burst, after one unmeasured burst so the server has seen one).
 */
async function roomGrowth(
  server: ServerProc,
  tokens: string[],
  hosts: string[],
  p: FloodsProfile,
  agentOpts: { core: number; progress: boolean },
): Promise<RoomGrowth> {
  const r = p.reference;
  const agent = Agent.start(`floods-reference-${server.name}`, agentOpts);
  const burster = Agent.start(`floods-reference-burst-${server.name}`, {
    ...agentOpts,
    ...ATTACKER,
  });
  const stop = tracked(async () => {
    await agent.stop();
    await burster.stop();
  });
  try {
    const target: Target = { hosts, port: server.port, tokens };
    const rooms = ["floods-reference"];
    const open = async (group: string, count: number, create: boolean) => {
      const o = await agent.call(
        { op: "open", group, target, count, concurrency: 32, rooms, create, timeoutMs: 15_000 },
        120_000,
      );
      if (o.failed > 0) throw new Error(`${o.failed} of ${group} failed: ${o.errors[0] ?? "?"}`);
    };
    const cmd: FanoutCmd = {
      op: "fanout",
      group: "members",
      senders: 2,
      mode: "rate",
      window: 1,
      deliveriesPerSec: r.deliveriesPerSec,
      warmupMs: 500,
      durationMs: r.ms,
      drainMs: 5_000,
      maxMessages: 1_000_000,
      serverPid: server.pid,
      suffix: "",
    };
    await open("members", r.members, true);
    const burstOnce = async (group: string) => {
      const o = await burster.call(
        {
          op: "open",
          group,
          target,
          count: p.burst,
          concurrency: p.burst,
          rooms,
          create: false,
          timeoutMs: 20_000,
        },
        120_000,
      );
      if (o.failed > 0) throw new Error(`${o.failed} of ${group} failed: ${o.errors[0] ?? "?"}`);
      await Bun.sleep(p.windowMs / 2);
      await burster.call({ op: "close", group, timeoutMs: 1000 }, 30_000);
    };
    await burstOnce("warm-up");
    const windowCmd: FanoutCmd = {
      ...cmd,
      deliveriesPerSec: p.deliveriesPerSec,
      durationMs: p.windowMs,
    };
    const calm = await agent.call(windowCmd, p.windowMs + 30_000);
    const [burst] = await Promise.all([
      agent.call(windowCmd, p.windowMs + 30_000),
      // Into the window (after the fan-out's 500 ms warm-up) by as much as its rest lasts after.
      Bun.sleep(windowCmd.warmupMs + p.windowMs / 8).then(() => burstOnce("burst")),
    ]);
    const small = await agent.call(cmd, r.ms + 30_000);
    await open("extra", r.extra, false);
    const big = await agent.call(cmd, r.ms + 30_000);
    return { small, big, calm, burst };
  } finally {
    await stop();
  }
}

/**
 * BENCH_FLOODS_BURST=N: the burst's size instead of the profile's; `0` opens no socket at all, so
 * the burst windows are quiet ones judged against the quiet windows before them (an A/A check of
 * the judge: how far two quiet windows side by side differ on this machine).
 */
export function withBurst(p: FloodsProfile, value: string | undefined): FloodsProfile {
  if (value === undefined || value === "") return p;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0 || n > 10_000)
    throw new Error(`BENCH_FLOODS_BURST must be an integer 0–10000, not ${JSON.stringify(value)}`);
  return { ...p, burst: n };
}

/** The floods BENCH_FLOODS_ONLY names (comma-separated), or null for all of them. */
function onlyPhases(): string[] | null {
  return envChoice("BENCH_FLOODS_ONLY", FLOOD_PHASES);
}

if (import.meta.main)
  runMain("bench:floods", () =>
    profileMain({
      script: "bench/floods.ts",
      tag: "floods",
      clientCore: CLIENT_CORE,
      quietNote: true,
      run: (profile) =>
        runFloods({
          profile,
          outDir: join(import.meta.dir, "results"),
          writeLatest: onlyPhases() === null,
          progress: true,
        }),
      report: (result) => floodsMarkdown(result),
    }),
  );
