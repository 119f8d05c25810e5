// What counting metrics costs the message hot path: `npm run bench:metrics` (about 2½ minutes on a
// quiet machine) or `bun bench/metrics.ts tiny`. Two Kabar trees in one run and in rotation, each
// repeat on a freshly started server and a fresh load client, the fan-out shape of bench/run.ts
// (10 rooms × 100 members on 4 users, 2 senders per room, 4 messages in flight per sender; then
// 20k deliveries/s):
//   metrics  this checkout (GET /metrics answers 200: every frame counted and timed)
//   none     BENCH_BASELINE_DIR, a tree of the commit before the metrics (GET /metrics is 404)
// Both sides are one node on the same settings (bench/setup.ts tunedEnv), pinned to the server
// core, the load client to the other. Deliveries per server CPU-second come from
// /proc/<pid>/stat at the window's edges (bench/fanout.ts). Before each window the harness waits
// (bounded) for other processes to go quiet; a disturbed window is run again (at most `retries`).
// Writes bench/results/<stamp>-metrics-<profile>.json and metrics-latest(.json|.md) (full; tiny
// writes metrics-latest-tiny.*).
import { existsSync, mkdtempSync } from "node:fs";
import { cpus, tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { tracked } from "./cleanup.ts";
import { type KabarSource, kabarSource, loadAvg } from "./cluster.ts";
import { CLUSTER_PROFILES, type ClusterProfile } from "./cluster-profiles.ts";
import type { FanoutRun } from "./paired.ts";
import { type Machine, machine } from "./proc.ts";
import type { Failure, QuietWait, TargetCheck } from "./result.ts";
import { pinning, startKabar } from "./servers.ts";
import {
  ADMIN,
  failRecorder,
  latestOf,
  PASSWORD,
  profileMain,
  progressLog,
  quietWaiter,
  runMain,
  shown,
  tidyTemp,
  tunedEnv,
  writeResults,
} from "./setup.ts";
import { type Running, runSides } from "./side-runs.ts";
import { round } from "./stats.ts";

const SERVER_CORE = 1;
const CLIENT_CORE = 0;

export type MetricsSideKey = "metrics" | "none";
export const METRICS_SIDES: MetricsSideKey[] = ["metrics", "none"];
const LABELS: Record<MetricsSideKey, string> = {
  metrics: "with metrics (this checkout)",
  none: "without metrics (BENCH_BASELINE_DIR)",
};

export const METRICS_PROFILES: Record<"full" | "tiny", ClusterProfile> = {
  full: {
    ...CLUSTER_PROFILES.full,
    rates: [{ label: "20k/s", deliveriesPerSec: 20_000 }],
    repeats: 4,
    retries: 1,
  },
  tiny: CLUSTER_PROFILES.tiny,
};

export interface MetricsSideResult {
  key: MetricsSideKey;
  label: string;
  dir: string;
  runs: FanoutRun[];
}

export interface MetricsResult {
  version: 1;
  kind: "metrics cost";
  kabar: KabarSource;
  baselineDir: string;
  baselineCommit: string;
  profile: ClusterProfile["name"];
  startedAt: string;
  durationSec: number;
  machine: Machine;
  loadAvg: { start: number[]; end: number[] };
  pinned: boolean;
  settings: ClusterProfile;
  sides: Partial<Record<MetricsSideKey, MetricsSideResult>>;
  /** Per mode: deliveries per CPU-second with ÷ without metrics (medians of the repeats). */
  ratios: { label: string; withMetrics: number; without: number; ratio: number }[];
  env: Record<string, string>;
  failures: Failure[];
  targets: TargetCheck[];
  background: QuietWait[];
  disturbed: { phase: string; otherCores: number; retried: boolean }[];
}

const git = (dir: string, args: string[]) =>
  Bun.spawnSync(["git", ...args], { cwd: dir, stdout: "pipe", stderr: "ignore" })
    .stdout.toString()
    .trim();

async function metricsStatus(port: number): Promise<number> {
  try {
    return (await fetch(`http://127.0.0.1:${port}/metrics`)).status;
  } catch {
    return -1;
  }
}

export async function runMetricsBench(opts: {
  profile: "full" | "tiny";
  outDir: string;
  writeLatest: boolean;
  progress: boolean;
  baselineDir: string;
}): Promise<{ result: MetricsResult; files: string[] }> {
  const p = METRICS_PROFILES[opts.profile];
  const started = new Date();
  const load0 = loadAvg();
  const t0 = performance.now();
  const log = progressLog("metrics", opts.progress, t0);
  const pinned = pinning && cpus().length >= 2;
  const core = (c: number) => (pinned ? c : -1);
  const tmp = mkdtempSync(join(tmpdir(), "kabar-bench-metrics-"));
  const env = tunedEnv(join(tmp, "data"));
  const roots: Record<MetricsSideKey, string> = {
    metrics: join(import.meta.dir, ".."),
    none: opts.baselineDir,
  };
  const failures: Failure[] = [];
  const background: QuietWait[] = [];
  const disturbed: MetricsResult["disturbed"] = [];
  const fail = failRecorder(failures, log);
  const quiet = quietWaiter(p.quietWaitMs, background, log);
  let logs = 0;
  const serverOpts = (name: string) => ({
    core: core(SERVER_CORE),
    logFile: join(tmp, `${name}-${++logs}.log`),
    gcDir: tmp,
  });
  const startSide = async (side: MetricsSideKey): Promise<Running> => {
    const s = await startKabar(env, { ...serverOpts(side), root: roots[side] });
    const stop = tracked(() => s.stop());
    // The sides are what they claim: the metrics side answers /metrics, the baseline does not.
    const status = await metricsStatus(s.port);
    const want = side === "metrics" ? 200 : 404;
    if (status !== want) {
      await stop();
      throw new Error(`${side}: GET /metrics answered ${status}, expected ${want}`);
    }
    return { pids: [s.pid], ports: [s.port], stop };
  };
  log(`profile ${p.name}; ${pinned ? "pinned" : "not pinned"}; baseline ${opts.baselineDir}`);
  const measured = await runSides({
    name: "metrics",
    group: "mf",
    sides: METRICS_SIDES,
    start: startSide,
    profile: p,
    adminEnv: env,
    adminOpts: serverOpts("admin"),
    admin: ADMIN,
    password: PASSWORD,
    agentCore: core(CLIENT_CORE),
    progress: opts.progress,
    log,
    fail,
    quiet,
    disturbed,
  });
  const sides: Partial<Record<MetricsSideKey, MetricsSideResult>> = {};
  for (const [side, { runs }] of measured)
    sides[side] = { key: side, label: LABELS[side], dir: roots[side], runs };
  const ratios: MetricsResult["ratios"] = [];
  for (const run of sides.metrics?.runs ?? []) {
    const other = sides.none?.runs.find((r) => r.label === run.label);
    if (other === undefined || other.deliveriesPerCpuSec === 0) continue;
    ratios.push({
      label: run.label,
      withMetrics: run.deliveriesPerCpuSec,
      without: other.deliveriesPerCpuSec,
      ratio: round(run.deliveriesPerCpuSec / other.deliveriesPerCpuSec, 3),
    });
  }
  const targets: TargetCheck[] = ratios.map((r) => ({
    name: `metrics cost, ${r.label}: deliveries per CPU-second with ÷ without ≥ 0.97`,
    target: "≥ 0.97",
    measured: String(r.ratio),
    met: r.ratio >= 0.97,
  }));
  if (ratios.length === 0)
    targets.push({
      name: "metrics cost measured",
      target: "both sides",
      measured: "no",
      met: false,
    });
  const result: MetricsResult = {
    version: 1,
    kind: "metrics cost",
    kabar: kabarSource(),
    baselineDir: opts.baselineDir,
    baselineCommit: git(opts.baselineDir, ["rev-parse", "HEAD"]) || "unknown",
    profile: p.name,
    startedAt: started.toISOString(),
    durationSec: round((performance.now() - t0) / 1000, 1),
    machine: machine(),
    loadAvg: { start: load0, end: loadAvg() },
    pinned,
    settings: p,
    sides,
    ratios,
    env: shown(env, tmp),
    failures,
    targets,
    background,
    disturbed,
  };
  const files = writeResults(
    opts.outDir,
    started,
    `metrics-${p.name}`,
    result,
    opts.writeLatest
      ? { name: latestOf("metrics", p.name), files: () => [["md", metricsMarkdown(result)]] }
      : null,
  );
  tidyTemp(tmp, failures, log);
  return { result, files };
}

/** The run as Markdown: per mode and side, deliveries per CPU-second, every repeat, the ratio. */
export function metricsMarkdown(r: MetricsResult): string {
  const lines = [
    `# Metrics cost (${r.profile}, ${r.startedAt})`,
    "",
    `This checkout ${r.kabar.commit.slice(0, 7)}${r.kabar.dirty ? " (src/ modified)" : ""} vs baseline ${r.baselineCommit.slice(0, 7)}; ${r.machine.cpuModel} ${r.pinned ? "server and client pinned to one core each" : "not pinned"}; load average ${r.loadAvg.start.join(" ")} → ${r.loadAvg.end.join(" ")}.`,
    "",
    "| mode | side | deliveries / CPU-s | each repeat | server cores | p99 ms | lost |",
    "|---|---|---:|---|---:|---:|---:|",
  ];
  for (const key of METRICS_SIDES)
    for (const run of r.sides[key]?.runs ?? [])
      lines.push(
        `| ${run.label} | ${key} | ${run.deliveriesPerCpuSec.toLocaleString("en-US")} | ${run.repeats
          .map((x) => Math.round(x.serverCpuSec > 0 ? x.windowDeliveries / x.serverCpuSec : 0))
          .join(", ")} | ${run.serverCores} | ${run.latency.p99Ms} | ${run.lost} |`,
      );
  lines.push("", "| mode | with ÷ without |", "|---|---:|");
  for (const x of r.ratios) lines.push(`| ${x.label} | ${x.ratio} |`);
  if (r.disturbed.length > 0) {
    const worst = Math.max(...r.disturbed.map((d) => d.otherCores));
    const kept = r.disturbed.filter((d) => !d.retried).length;
    lines.push(
      "",
      `${r.disturbed.length} windows had other processes above the quiet line (at most ${worst} cores); ${kept} of them were kept after the last retry (listed in the JSON).`,
    );
  }
  if (r.failures.length > 0)
    lines.push("", `Failures: ${r.failures.map((f) => `${f.phase}: ${f.error}`).join("; ")}.`);
  return `${lines.join("\n")}\n`;
}

if (import.meta.main)
  runMain("bench:metrics", () => {
    const dir = process.env.BENCH_BASELINE_DIR;
    if (!dir || !existsSync(join(dir, "src/main.ts")))
      throw new Error(
        "set BENCH_BASELINE_DIR to a Kabar tree without metrics (e.g. git worktree add <dir> e957323, with node_modules linked)",
      );
    const baselineDir = resolve(dir);
    return profileMain({
      script: "bench/metrics.ts",
      tag: "metrics",
      clientCore: CLIENT_CORE,
      quietNote: true,
      run: (profile) =>
        runMetricsBench({
          profile,
          outDir: join(import.meta.dir, "results"),
          writeLatest: true,
          progress: true,
          baselineDir,
        }),
      report: (result) => metricsMarkdown(result),
    });
  });
