// Soak: `npm run soak` (full: 10 minutes at 10,000 connections, 5,000 deliveries/s, 100
// connects + disconnects per second) or `npm run soak:quick` (20 s at 1,000 connections, what CI
// runs through test/soak.test.ts). One Kabar (`bun src/main.ts`, SQLite, the bench's tuned
// settings) pinned to one core; load clients (bench/steady-client.ts) in separate processes on
// the other: two holding the steady members (R rooms × M each, one user per socket, the first
// `senders` members of each room sending), one churning (connect → welcome → join a churn room →
// close, paced, over its own pool of users). Every `sampleMs` the harness forces a full GC in the
// server (bench/gc-hook.ts, which with BENCH_TIMERS=1 also counts its pending timers) and reads
// its RSS and open file descriptors (/proc/<pid>) and its map and set sizes
// (`GET /api/v1/ws/internals` as the superuser). Judged: RSS of the last window against the
// "minute two" window (after the GC), every size and the timer and fd counts after the load
// (churn stopped, sockets settled, idle slots evicted) equal to before it, 0 messages lost or
// repeated for the steady members (by seq per room), the churn and delivery rates reached.
// Writes bench/results/<stamp>-soak-<profile>.json and soak-latest(.json|.md) (full) or
// soak-latest-<profile>.* (quick).
import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { cpus, tmpdir } from "node:os";
import { join } from "node:path";
import { stopOnSignals, tracked } from "./cleanup.ts";
import { type KabarSource, kabarSource, loadAvg } from "./cluster.ts";
import { LineAgent } from "./line-agent.ts";
import { type Machine, machine, rssBytes } from "./proc.ts";
import type { Failure, TargetCheck } from "./result.ts";
import { names } from "./scenarios.ts";
import { login, pinning, startKabar } from "./servers.ts";
import {
  ADMIN,
  failRecorder,
  latestOf,
  progressLog,
  runMain,
  shown,
  socketUsers,
  tidyTemp,
  tunedEnv,
  writeResults,
} from "./setup.ts";
import type { Latency } from "./stats.ts";
import { round } from "./stats.ts";
import type {
  ChurnStopResult,
  Endpoints,
  SteadyCollectResult,
  SteadyOpenResult,
} from "./steady-client.ts";

export const STEADY = join(import.meta.dir, "steady-client.ts");
const SERVER_CORE = 1;
const CLIENT_CORE = 0;

export interface SoakProfile {
  name: "full" | "quick";
  /** Steady-member processes, each with `rooms` rooms of `members` members. */
  processes: number;
  rooms: number;
  members: number;
  senders: number;
  deliveriesPerSec: number;
  churnPerSec: number;
  /** Users the churn takes turns with (its own, not the steady members'). */
  churnUsers: number;
  churnRooms: number;
  durationMs: number;
  sampleMs: number;
  /** RSS windows compared, in seconds from the start of the load: [from, to). */
  early: [number, number];
  late: [number, number];
  /** Largest allowed |late ÷ early − 1| of the mean RSS after a forced GC. */
  rssBound: number;
  /** Messages per second per process while filling every room's history before the load. */
  prefillMsgPerSec: number;
  /** After the load: wait at most this long for the sizes to settle (idle slots go every 10 s). */
  settleMs: number;
  hosts: number;
  sources: number;
}

export const SOAK_PROFILES: Record<SoakProfile["name"], SoakProfile> = {
  full: {
    name: "full",
    processes: 2,
    rooms: 100,
    members: 50,
    senders: 2,
    deliveriesPerSec: 5000,
    churnPerSec: 100,
    churnUsers: 1000,
    churnRooms: 20,
    durationMs: 600_000,
    sampleMs: 10_000,
    early: [60, 120],
    late: [540, 600],
    rssBound: 0.05,
    prefillMsgPerSec: 500,
    settleMs: 15_000,
    hosts: 8,
    sources: 8,
  },
  quick: {
    name: "quick",
    processes: 2,
    rooms: 10,
    members: 50,
    senders: 2,
    deliveriesPerSec: 1000,
    churnPerSec: 50,
    churnUsers: 200,
    churnRooms: 4,
    durationMs: 20_000,
    sampleMs: 2000,
    early: [4, 10],
    late: [14, 20],
    rssBound: 0.15,
    prefillMsgPerSec: 1000,
    settleMs: 12_000,
    hosts: 2,
    sources: 2,
  },
};

export interface SoakSample {
  /** Seconds from the start of the load (negative: before it). */
  t: number;
  tag: "before" | "load" | "after";
  rssBytes: number;
  openFds: number;
  timers: number | null;
  gc: boolean;
  /** `part.size` → count, from GET /api/v1/ws/internals (process fields left out). */
  sizes: Record<string, number>;
}

export interface SoakResult {
  version: 1;
  kind: "soak";
  kabar: KabarSource;
  profile: SoakProfile["name"];
  startedAt: string;
  durationSec: number;
  machine: Machine;
  loadAvg: { start: number[]; end: number[] };
  pinned: boolean;
  settings: SoakProfile & { sockets: number };
  env: Record<string, string>;
  open?: SteadyOpenResult[];
  samples: SoakSample[];
  /** Latency of the steady members' deliveries per sample interval (the first process). */
  latency: Latency[];
  churn?: ChurnStopResult;
  /** Deliveries to the steady members during the load (the history prefill left out). */
  loadDeliveries?: number;
  collect?: SteadyCollectResult[];
  rss?: { earlyMiB: number; lateMiB: number; ratio: number };
  failures: Failure[];
  targets: TargetCheck[];
}

const MiB = 2 ** 20;
/** ROOM_HISTORY_SIZE of the soak's Kabar (the default). */
const HISTORY_SIZE = 100;

/** Flattens the internals answer to `part.key` → number (the process part is sampled from /proc). */
function flatten(body: Record<string, unknown>): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [part, v] of Object.entries(body)) {
    if (part === "process" || typeof v !== "object" || v === null) continue;
    for (const [k, n] of Object.entries(v)) if (typeof n === "number") out[`${part}.${k}`] = n;
  }
  return out;
}

/** Samples one server: forced GC, RSS, fds, pending timers, internal sizes. */
export function sampler(o: {
  pid: number;
  port: number;
  gc: () => Promise<boolean>;
  gcDir: string;
  adminToken: string;
}): (t: number, tag: SoakSample["tag"]) => Promise<SoakSample> {
  return async (t, tag) => {
    const gc = await o.gc();
    let timers: number | null = null;
    try {
      timers = Number(readFileSync(join(o.gcDir, `timers-${o.pid}`), "utf8"));
    } catch {}
    const res = await fetch(`http://127.0.0.1:${o.port}/api/v1/ws/internals`, {
      headers: { authorization: `Bearer ${o.adminToken}` },
    });
    if (res.status !== 200) throw new Error(`internals: ${res.status} ${await res.text()}`);
    const sizes = flatten((await res.json()) as Record<string, unknown>);
    return {
      t: round(t, 1),
      tag,
      rssBytes: rssBytes(o.pid),
      openFds: readdirSync(`/proc/${o.pid}/fd`).length,
      timers,
      gc,
      sizes,
    };
  };
}

const mean = (xs: number[]) => (xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : Number.NaN);

/**
 * What grew from `a` to `b`: every map and set, the pending timers and the open fds (within 2)
 * no bigger than in `a`. Three are caches with a cap, judged against it instead: the room history (at most
 * `historySize` messages in each room it holds, rooms no more than the registry's), and the user
 * cache (at most `cacheGrowth` more users than in `a`, the churn's own users).
 */
export function grown(
  a: SoakSample,
  b: SoakSample,
  caps: { historySize: number; cacheGrowth: number },
): string[] {
  const out: string[] = [];
  const capped: Record<string, number> = {
    "history.rooms": b.sizes["registry.rooms"] ?? 0,
    "history.messages": caps.historySize * (b.sizes["history.rooms"] ?? 0),
    "history.queued": 2 * caps.historySize * (b.sizes["history.rooms"] ?? 0) + 1025,
    "users.cached_users": (a.sizes["users.cached_users"] ?? 0) + caps.cacheGrowth,
  };
  const keys = new Set([...Object.keys(a.sizes), ...Object.keys(b.sizes)]);
  for (const k of [...keys].sort()) {
    const [x, y] = [a.sizes[k] ?? 0, b.sizes[k] ?? 0];
    const cap = capped[k];
    if (cap !== undefined ? y > cap : y > x)
      out.push(`${k} ${x} → ${y}${cap !== undefined ? ` (cap ${cap})` : ""}`);
  }
  if ((b.timers ?? 0) > (a.timers ?? 0)) out.push(`timers ${a.timers} → ${b.timers}`);
  if (b.openFds > a.openFds + 2) out.push(`open fds ${a.openFds} → ${b.openFds}`);
  return out;
}

export function checkSoakTargets(r: SoakResult): TargetCheck[] {
  const p = r.settings;
  const fail = r.failures.map((f) => `${f.phase} threw: ${f.error.slice(0, 100)}`);
  const pre = (extra: string[]) => [...fail, ...extra].join("; ");
  const out: TargetCheck[] = [];
  const rss = r.rss;
  out.push({
    name: `RSS after a forced GC, mean of seconds ${p.late[0]}–${p.late[1]} vs ${p.early[0]}–${p.early[1]}`,
    target: `within ${p.rssBound * 100}%`,
    measured: rss
      ? `${rss.earlyMiB} → ${rss.lateMiB} MiB (${rss.ratio}×)`
      : pre(["no RSS windows"]) || "MISSING",
    met: rss !== undefined && fail.length === 0 && Math.abs(rss.ratio - 1) <= p.rssBound,
  });
  const before = r.samples.find((s) => s.tag === "before");
  const after = r.samples.find((s) => s.tag === "after");
  const caps = { historySize: HISTORY_SIZE, cacheGrowth: p.churnUsers };
  const diff = before && after ? grown(before, after, caps) : ["MISSING before/after sample"];
  out.push({
    name: "map and set sizes, pending timers, open fds: after the load (settled) vs before it",
    target: `no growth (fds ±2); capped caches within their caps (history: ${HISTORY_SIZE} per room; user cache: + the churn's ${p.churnUsers} users)`,
    measured:
      diff.length === 0
        ? `none grew: ${Object.keys(after?.sizes ?? {}).length} sizes, timers ${after?.timers}, fds ${after?.openFds}; history ${after?.sizes["history.messages"]} messages in ${after?.sizes["history.rooms"]} rooms; user cache ${before?.sizes["users.cached_users"]} → ${after?.sizes["users.cached_users"]}`
        : diff.join(", "),
    met: diff.length === 0 && fail.length === 0,
  });
  const c = r.collect ?? [];
  const sum = (f: (x: SteadyCollectResult) => number) => c.reduce((a, x) => a + f(x), 0);
  const whole = c.length === p.processes;
  out.push({
    name: "steady members: messages lost, repeated, unanswered; sockets closed",
    target: "0",
    measured: whole
      ? `lost ${sum((x) => x.lost)}, duplicates ${sum((x) => x.duplicates)}, unanswered ${sum((x) => x.unanswered)}, closed ${sum((x) => x.closed)} of ${sum((x) => x.sockets)}; ${sum((x) => x.sent)} messages, ${sum((x) => x.deliveries)} deliveries`
      : pre(["MISSING collect"]),
    met:
      whole &&
      sum((x) => x.lost + x.duplicates + x.unanswered + x.closed + x.errorFrames) === 0 &&
      sum((x) => x.sent) > 0,
  });
  const secs = p.durationMs / 1000;
  const rate = (r.loadDeliveries ?? Number.NaN) / secs;
  out.push({
    name: "deliveries per second to the steady members during the load",
    target: `≥ 90% of ${p.deliveriesPerSec}`,
    measured: Number.isFinite(rate) ? `${Math.round(rate)}` : "MISSING",
    met: Number.isFinite(rate) && rate >= 0.9 * p.deliveriesPerSec,
  });
  const ch = r.churn;
  out.push({
    name: "churn: connects + disconnects per second (each joins a room)",
    target: `≥ 90% of ${p.churnPerSec}, 0 failed`,
    measured: ch ? `${round(ch.ops / secs, 1)} (${ch.ops} ops, ${ch.failed} failed)` : "MISSING",
    met: ch !== undefined && ch.failed === 0 && ch.ops / secs >= 0.9 * p.churnPerSec,
  });
  return out;
}

export function soakMarkdown(r: SoakResult): string {
  const p = r.settings;
  const lines = [
    `# Soak (${r.profile}) — ${r.startedAt}, commit ${r.kabar.commit ?? "?"}`,
    "",
    `${p.sockets} steady sockets (${p.processes} processes × ${p.rooms} rooms × ${p.members}), ${p.deliveriesPerSec} deliveries/s, ${p.churnPerSec} connects + disconnects/s, ${p.durationMs / 1000} s; sampled every ${p.sampleMs / 1000} s after a forced GC. Run took ${r.durationSec} s.`,
    "",
    "| target | wanted | measured | met |",
    "| --- | --- | --- | --- |",
    ...r.targets.map(
      (t) =>
        `| ${t.name} | ${t.target} | ${t.measured} | ${t.met === null ? "–" : t.met ? "yes" : "**no**"} |`,
    ),
    "",
    "| t (s) | RSS (MiB) | fds | timers | connections | user slots | registry members | history rooms | p99 (ms) |",
    "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
  ];
  let w = 0;
  for (const s of r.samples) {
    const lat = s.tag === "load" ? r.latency[w++] : undefined;
    lines.push(
      `| ${s.t}${s.tag === "load" ? "" : ` (${s.tag})`} | ${round(s.rssBytes / MiB, 1)} | ${s.openFds} | ${s.timers ?? "–"} | ${s.sizes["hub.connections"] ?? "–"} | ${s.sizes["hub.user_slots"] ?? "–"} | ${s.sizes["registry.members"] ?? "–"} | ${s.sizes["history.rooms"] ?? "–"} | ${lat?.p99Ms ?? "–"} |`,
    );
  }
  if (r.failures.length)
    lines.push("", ...r.failures.map((f) => `- FAILED ${f.phase}: ${f.error}`));
  return `${lines.join("\n")}\n`;
}

/** Steady members: a process per `processes`, rooms `<tag><p>-<k>`, each room alternating ports. */
export function endpoints(p: { hosts: number; sources: number }, ports: number[]): Endpoints {
  return {
    hosts: Array.from({ length: p.hosts }, (_, k) => `127.0.0.${k + 1}`),
    sources: Array.from({ length: p.sources }, (_, k) => `127.0.0.${k + 101}`),
    ports,
  };
}

export async function runSoak(opts: {
  profile: SoakProfile["name"];
  outDir: string;
  writeLatest: boolean;
  progress: boolean;
}): Promise<{ result: SoakResult; files: string[] }> {
  const p = SOAK_PROFILES[opts.profile];
  const started = new Date();
  const load0 = loadAvg();
  const t0 = performance.now();
  const log = progressLog("soak", opts.progress, t0);
  const pinned = pinning && cpus().length >= 2;
  const core = (c: number) => (pinned ? c : -1);
  const tmp = mkdtempSync(join(tmpdir(), "kabar-bench-soak-"));
  const dataDir = join(tmp, "data");
  const perProcess = p.rooms * p.members;
  const steady = p.processes * perProcess;
  const kabarEnv = {
    ...tunedEnv(dataDir),
    ROOM_HISTORY_SIZE: String(HISTORY_SIZE),
    CONNECT_RATE_PER_IP: "0",
    BENCH_TIMERS: "1",
  };
  const failures: Failure[] = [];
  const fail = failRecorder(failures, log);
  const samples: SoakSample[] = [];
  const latency: Latency[] = [];
  const out: Partial<SoakResult> = {};
  const stops: (() => Promise<void>)[] = [];
  try {
    log(`profile ${p.name}; ${steady} steady sockets; temp ${tmp}`);
    const serverOpts = (name: string) => ({
      core: core(SERVER_CORE),
      logFile: join(tmp, `${name}.log`),
      gcDir: tmp,
    });
    const { tokensFile, dbUrl } = await socketUsers({
      env: kabarEnv,
      dataDir,
      tmp,
      count: steady + p.churnUsers,
      prefix: "soak",
      server: serverOpts("admin"),
    });
    const server = await startKabar({ ...kabarEnv, DATABASE_URL: dbUrl }, serverOpts("kabar"));
    stops.push(tracked(() => server.stop()));
    const adminToken = await login(
      `http://127.0.0.1:${server.port}/api/v1`,
      ADMIN.email,
      ADMIN.password,
    );
    const sample = sampler({ ...server, gcDir: tmp, adminToken });
    const ends = endpoints(p, [server.port]);
    const agents = Array.from({ length: p.processes }, (_, k) =>
      LineAgent.start(`soak-steady-${k}`, STEADY, {
        core: core(CLIENT_CORE),
        progress: opts.progress,
      }),
    );
    const churner = LineAgent.start("soak-churn", STEADY, {
      core: core(CLIENT_CORE),
      progress: opts.progress,
    });
    for (const a of [...agents, churner]) stops.push(tracked(() => a.stop()));
    const churnRooms = names("soakchurn", p.churnRooms);
    out.open = await Promise.all(
      agents.map((a, k) =>
        a.call<SteadyOpenResult>(
          {
            op: "open",
            ...ends,
            file: tokensFile,
            tokenOffset: k * perProcess,
            rooms: names(`soak${k}`, p.rooms),
            members: p.members,
            senders: p.senders,
            create: [...names(`soak${k}`, p.rooms), ...(k === 0 ? churnRooms : [])],
            concurrency: 64,
            timeoutMs: 15_000,
          },
          300_000,
        ),
      ),
    );
    const opened = out.open.reduce((a, o) => a + o.opened, 0);
    log(`opened ${opened} of ${steady}`);
    if (opened !== steady)
      throw new Error(`${steady - opened} sockets failed: ${out.open[0]?.errors[0]}`);
    // Every room's history filled to its cap first, so that its growth is not read as a leak.
    const prefillMs = Math.ceil((HISTORY_SIZE * p.rooms * 1000) / p.prefillMsgPerSec);
    await Promise.all(
      agents.map((a) =>
        a.call({ op: "send", msgPerSec: p.prefillMsgPerSec, maxMs: prefillMs }, 10_000),
      ),
    );
    await Bun.sleep(prefillMs + 1000);
    log(`history filled: ${HISTORY_SIZE} messages per room in ${prefillMs} ms`);
    samples.push(await sample(-0.5, "before"));
    // Latency windows start with the load (the first one would hold the prefill's deliveries).
    await Promise.all(agents.map((a) => a.call<Latency>({ op: "window" }, 10_000)));
    let loadDeliveries = 0;
    const secs = p.durationMs / 1000;
    const loadStart = performance.now();
    await Promise.all(
      agents.map((a) =>
        a.call(
          {
            op: "send",
            msgPerSec: p.deliveriesPerSec / p.members / p.processes,
            maxMs: p.durationMs + 5000,
          },
          10_000,
        ),
      ),
    );
    await churner.call(
      {
        op: "churn",
        ...ends,
        file: tokensFile,
        tokenOffset: steady,
        users: p.churnUsers,
        rooms: churnRooms,
        ratePerSec: p.churnPerSec,
        concurrency: 100,
        join: true,
        maxMs: p.durationMs,
        maxOps: Math.ceil(p.churnPerSec * secs * 1.1),
        timeoutMs: 10_000,
      },
      10_000,
    );
    for (let k = 1; k <= Math.round(p.durationMs / p.sampleMs); k++) {
      const wait = loadStart + k * p.sampleMs - performance.now();
      if (wait > 0) await Bun.sleep(wait);
      const s = await sample((performance.now() - loadStart) / 1000, "load");
      samples.push(s);
      const windows = await Promise.all(
        agents.map((a) => a.call<Latency>({ op: "window" }, 10_000)),
      );
      latency.push(windows[0] as Latency);
      loadDeliveries += windows.reduce((n, w) => n + w.count, 0);
      log(
        `t ${s.t}s: RSS ${round(s.rssBytes / MiB, 1)} MiB, fds ${s.openFds}, timers ${s.timers}, connections ${s.sizes["hub.connections"]}, slots ${s.sizes["hub.user_slots"]}`,
      );
    }
    out.churn = await churner.call<ChurnStopResult>({ op: "churnStop" }, 30_000);
    out.collect = await Promise.all(
      agents.map((a) => a.call<SteadyCollectResult>({ op: "collect", drainMs: 10_000 }, 30_000)),
    );
    out.loadDeliveries = loadDeliveries;
    log(`churn ${out.churn.ops} ops (${out.churn.failed} failed); collected`);
    // Settled: the churn's sockets gone, its users' idle slots evicted (every 10 s).
    const before = samples[0] as SoakSample;
    const settleEnd = performance.now() + p.settleMs;
    let after = await sample((performance.now() - loadStart) / 1000, "after");
    const caps = { historySize: HISTORY_SIZE, cacheGrowth: p.churnUsers };
    while (grown(before, after, caps).length > 0 && performance.now() < settleEnd) {
      await Bun.sleep(1000);
      after = await sample((performance.now() - loadStart) / 1000, "after");
    }
    samples.push(after);
    const inWindow = (w: [number, number]) =>
      samples
        .filter((s) => s.tag === "load" && s.t >= w[0] - 0.5 && s.t < w[1] + 0.5)
        .map((s) => s.rssBytes);
    const early = mean(inWindow(p.early));
    const late = mean(inWindow(p.late));
    if (Number.isFinite(early) && Number.isFinite(late))
      out.rss = {
        earlyMiB: round(early / MiB, 1),
        lateMiB: round(late / MiB, 1),
        ratio: round(late / early, 3),
      };
  } catch (e) {
    fail("soak", e);
  } finally {
    for (const s of stops.splice(0).reverse()) await s();
  }
  const result: SoakResult = {
    version: 1,
    kind: "soak",
    kabar: kabarSource(),
    profile: p.name,
    startedAt: started.toISOString(),
    durationSec: round((performance.now() - t0) / 1000, 1),
    machine: machine(),
    loadAvg: { start: load0, end: loadAvg() },
    pinned,
    settings: { ...p, sockets: steady },
    env: shown(kabarEnv, tmp),
    ...out,
    samples,
    latency,
    failures,
    targets: [],
  };
  result.targets = checkSoakTargets(result);
  const files = writeResults(
    opts.outDir,
    started,
    `soak-${p.name}`,
    result,
    opts.writeLatest
      ? { name: latestOf("soak", p.name), files: () => [["md", soakMarkdown(result)]] }
      : null,
  );
  tidyTemp(tmp, failures, log);
  return { result, files };
}

/** `report [file]`: the targets and the Markdown again from a run's JSON (default: the latest). */
function report(file: string): number {
  const result = JSON.parse(readFileSync(file, "utf8")) as SoakResult;
  result.targets = checkSoakTargets(result);
  const md = soakMarkdown(result);
  writeFileSync(file, `${JSON.stringify(result, null, 2)}\n`);
  writeFileSync(file.replace(/\.json$/, ".md"), md);
  console.log(md);
  return 0;
}

if (import.meta.main) {
  const arg = process.argv[2] ?? "full";
  runMain("soak", async () => {
    if (arg === "report")
      return report(process.argv[3] ?? join(import.meta.dir, "results", "soak-latest.json"));
    if (arg !== "full" && arg !== "quick") {
      console.error("usage: bun bench/soak.ts [full|quick|report [file.json]]");
      return 2;
    }
    if (pinning && cpus().length >= 2)
      Bun.spawnSync(["taskset", "-apc", String(CLIENT_CORE), String(process.pid)], {
        stdout: "ignore",
      });
    stopOnSignals();
    const { result, files } = await runSoak({
      profile: arg,
      outDir: join(import.meta.dir, "results"),
      writeLatest: true,
      progress: true,
    });
    console.log(soakMarkdown(result));
    console.log(`wrote ${files.join(", ")}`);
    const missed = result.targets.filter((t) => t.met === false).length;
    if (missed > 0) console.log(`${missed} target(s) not met`);
    return missed > 0 ? 1 : 0;
  });
}
