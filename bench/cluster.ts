// Cluster fan-out benchmark: `npm run bench:cluster` (full, about 5 minutes) or
// `bun bench/cluster.ts tiny`. In one run and in rotation, each repeat on freshly started servers
// and a fresh load client, the single-node fan-out shape (10 rooms × 100 members, 2 senders per
// room) against:
//   baseline      bare Bun (bench/baseline.ts), one process
//   oneNode       Kabar, one node, no Redis (the reference of the cluster target)
//   oneNodeRedis  Kabar, one node in cluster mode (REDIS_URL): every member local, so this is
//                 what Redis costs on its own
//   twoNodes      Kabar, two nodes and one redis-server: each room's members alternate between
//                 the nodes (50 + 50), one sender of each room on each node
// Every server process (the nodes and the bench's own redis-server) is pinned to the server core,
// the load client to the other; server CPU is read from /proc/<pid>/stat of each of them at the
// edges of the measuring window, so deliveries per CPU-second count both nodes and Redis. Kabar
// nodes share one SQLite file (DATABASE_URL=sqlite:///…) holding the users made through the REST
// API. Writes bench/results/<stamp>-cluster-<profile>.json and cluster-latest(.json|.md|.svg)
// (full; other profiles cluster-latest-<profile>.*). A phase that throws is recorded; its targets
// are then missed, never passed.
import { mkdtempSync } from "node:fs";
import { cpus, tmpdir } from "node:os";
import { join } from "node:path";
import { tracked } from "./cleanup.ts";
import {
  CLUSTER_PROFILES,
  type ClusterProfile,
  type ClusterSideKey,
  SIDE_KEYS,
  SIDE_LABELS,
} from "./cluster-profiles.ts";
import { checkClusterTargets, clusterMarkdown, clusterSvg } from "./cluster-report.ts";
import type { FanoutRun } from "./paired.ts";
import { type Machine, machine } from "./proc.ts";
import { type BenchRedis, startRedis } from "./redis.ts";
import type { Failure, QuietWait, TargetCheck } from "./result.ts";
import { pinning, type ServerProc, startBaseline, startKabar } from "./servers.ts";
import {
  ADMIN,
  envChoice,
  failRecorder,
  latestOf,
  loadAvg,
  PASSWORD,
  profileMain,
  progressLog,
  quietWaiter,
  runMain,
  SECRET,
  shown,
  tidyTemp,
  tunedEnv,
  writeResults,
} from "./setup.ts";
import { type Running, runSides } from "./side-runs.ts";
import { round } from "./stats.ts";

export { ADMIN, loadAvg, PASSWORD, SECRET, shown };

const SERVER_CORE = 1;
const CLIENT_CORE = 0;

/** One kind of server setup: what runs, with which environment. */
export interface ClusterServerSettings {
  side: ClusterSideKey;
  label: string;
  /** The processes whose CPU is server CPU, in the order of `pidCpuSec`. */
  processes: string[];
  program: string;
  env: Record<string, string>;
}

export interface ClusterSideResult {
  key: ClusterSideKey;
  label: string;
  processes: string[];
  /** Sockets each node held after the group opened (from /api/v1/ws/health), per repeat. */
  socketsPerNode: number[][];
  /** Closed loop, then each fixed rate; medians of the repeats (bench/paired.ts `combine`). */
  runs: FanoutRun[];
}

export interface ClusterResult {
  version: 1;
  kind: "cluster fan-out";
  kabar: KabarSource;
  profile: ClusterProfile["name"];
  startedAt: string;
  durationSec: number;
  machine: Machine;
  /** /proc/loadavg (1, 5, 15 minutes) at the start and at the end of the run. */
  loadAvg: { start: number[]; end: number[] };
  pinned: boolean;
  serverCore: number;
  clientCore: number;
  settings: ClusterProfile;
  sides: Partial<Record<ClusterSideKey, ClusterSideResult>>;
  servers: ClusterServerSettings[];
  failures: Failure[];
  targets: TargetCheck[];
  background: QuietWait[];
  /** Windows run again because other processes were busy during them (ClusterProfile.retries). */
  disturbed: { phase: string; otherCores: number; retried: boolean }[];
}

export interface ClusterOptions {
  profile: ClusterProfile["name"];
  outDir: string;
  /** Also write cluster-latest.* (full) or cluster-latest-<profile>.* (others). */
  writeLatest: boolean;
  progress: boolean;
}

/** Which Kabar was measured: BENCH_KABAR_DIR (bench/servers.ts) or this checkout, and its commit. */
export interface KabarSource {
  dir: string;
  /** BENCH_KABAR_COMMIT when set (an exported tree has no .git), else this checkout's HEAD. */
  commit: string;
  /** This checkout's src/ had uncommitted changes (only when it is the one measured). */
  dirty: boolean | null;
}

export function kabarSource(): KabarSource {
  const root = join(import.meta.dir, "..");
  const git = (args: string[]) =>
    Bun.spawnSync(["git", ...args], { cwd: root, stdout: "pipe", stderr: "ignore" })
      .stdout.toString()
      .trim();
  const dir = process.env.BENCH_KABAR_DIR;
  if (dir !== undefined)
    return { dir, commit: process.env.BENCH_KABAR_COMMIT ?? "unknown", dirty: null };
  return {
    dir: "this checkout",
    commit: git(["rev-parse", "HEAD"]) || "unknown",
    dirty: git(["status", "--porcelain", "--", "src"]) !== "",
  };
}

type Part = { pid: number; port: number; stop(): Promise<void> };

/** Starts `parts` in order; if one fails, stops those already started and rethrows. */
async function startAll(parts: (() => Promise<Part>)[]): Promise<Running> {
  const started: Part[] = [];
  const stop = async () => {
    for (const s of started.splice(0).reverse()) await s.stop();
  };
  try {
    for (const part of parts) started.push(await part());
  } catch (e) {
    await stop();
    throw e;
  }
  return { pids: started.map((s) => s.pid), ports: started.map((s) => s.port), stop };
}

export async function runCluster(opts: ClusterOptions): Promise<{
  result: ClusterResult;
  files: string[];
}> {
  const base = CLUSTER_PROFILES[opts.profile];
  const p: ClusterProfile = { ...base, repeats: repeatsOverride() ?? base.repeats };
  const started = new Date();
  const load0 = loadAvg();
  const t0 = performance.now();
  const log = progressLog("cluster", opts.progress, t0);
  const pinned = pinning && cpus().length >= 2;
  const core = (c: number) => (pinned ? c : -1);
  const tmp = mkdtempSync(join(tmpdir(), "kabar-bench-cluster-"));
  const dataDir = join(tmp, "data");
  const dbUrl = `sqlite://${join(dataDir, "kabar.db")}`;
  // bench/run.ts's tuned settings: no log lines, no bot, no limit in the way.
  const kabarEnv = tunedEnv(dataDir);
  const nodeEnv = (redis: BenchRedis) => ({
    ...kabarEnv,
    DATABASE_URL: dbUrl,
    REDIS_URL: redis.url,
  });
  const REDIS_SHOWN = "redis://127.0.0.1:<free port>";
  const servers: ClusterServerSettings[] = [
    {
      side: "baseline",
      label: SIDE_LABELS.baseline,
      processes: ["bare Bun"],
      program: "bun bench/baseline.ts",
      env: shown({ SECRET_KEY: SECRET }, tmp),
    },
    {
      side: "oneNode",
      label: SIDE_LABELS.oneNode,
      processes: ["node"],
      program: "bun src/main.ts",
      env: shown(kabarEnv, tmp),
    },
    {
      side: "oneNodeRedis",
      label: SIDE_LABELS.oneNodeRedis,
      processes: ["node", "redis-server"],
      program: 'bun src/main.ts; /usr/bin/redis-server --port P --save "" --appendonly no',
      env: shown({ ...kabarEnv, DATABASE_URL: dbUrl, REDIS_URL: REDIS_SHOWN }, tmp),
    },
    {
      side: "twoNodes",
      label: SIDE_LABELS.twoNodes,
      processes: ["node A", "node B", "redis-server"],
      program:
        'bun src/main.ts (×2, own ports); /usr/bin/redis-server --port P --save "" --appendonly no',
      env: shown({ ...kabarEnv, DATABASE_URL: dbUrl, REDIS_URL: REDIS_SHOWN }, tmp),
    },
  ];
  const failures: Failure[] = [];
  const background: QuietWait[] = [];
  const disturbed: ClusterResult["disturbed"] = [];
  const fail = failRecorder(failures, log);
  const quiet = quietWaiter(p.quietWaitMs, background, log);
  let logs = 0;
  const serverOpts = (name: string) => ({
    core: core(SERVER_CORE),
    logFile: join(tmp, `${name}-${++logs}.log`),
    gcDir: tmp,
  });
  const kabar = (env: Record<string, string>, name: string) => async (): Promise<Part> => {
    const s: ServerProc = await startKabar(env, serverOpts(name));
    return { pid: s.pid, port: s.port, stop: tracked(() => s.stop()) };
  };
  // A cluster side: redis-server first (the nodes need it); its pid is listed after the nodes'.
  const clusterSide = async (nodes: number): Promise<Running> => {
    const redis = await startRedis(core(SERVER_CORE));
    const stopRedis = tracked(() => redis.stop());
    try {
      const n = await startAll(
        Array.from({ length: nodes }, (_, k) => kabar(nodeEnv(redis), `node${k}`)),
      );
      return {
        pids: [...n.pids, redis.pid],
        ports: n.ports,
        stop: async () => {
          await n.stop();
          await stopRedis();
        },
      };
    } catch (e) {
      await stopRedis();
      throw e;
    }
  };
  const starts: Record<ClusterSideKey, () => Promise<Running>> = {
    baseline: async () => {
      const b = await startBaseline({ SECRET_KEY: SECRET }, serverOpts("baseline"));
      return { pids: [b.pid], ports: [b.port], stop: tracked(() => b.stop()) };
    },
    oneNode: () => startAll([kabar(kabarEnv, "kabar")]),
    oneNodeRedis: () => clusterSide(1),
    twoNodes: () => clusterSide(2),
  };
  log(`profile ${p.name}; ${pinned ? "pinned" : "not pinned"}; temp ${tmp}`);
  const measured = await runSides({
    name: "cluster",
    group: "cf",
    sides: onlySides() ?? SIDE_KEYS,
    start: (side) => starts[side](),
    profile: p,
    adminEnv: kabarEnv,
    adminOpts: serverOpts("admin"),
    admin: ADMIN,
    password: PASSWORD,
    agentCore: core(CLIENT_CORE),
    progress: opts.progress,
    log,
    fail,
    quiet,
    disturbed,
    onUsers: (tokens) =>
      log(`${tokens.length} users made through the API in ${dbUrl.replace(tmp, "<tmp>")}`),
  });
  const sides: Partial<Record<ClusterSideKey, ClusterSideResult>> = {};
  for (const [side, { runs, socketsPerNode }] of measured) {
    const settings = servers.find((s) => s.side === side);
    sides[side] = {
      key: side,
      label: SIDE_LABELS[side],
      processes: settings?.processes ?? [],
      socketsPerNode,
      runs,
    };
  }
  const partial = { settings: p, sides, failures };
  const result: ClusterResult = {
    version: 1,
    kind: "cluster fan-out",
    kabar: kabarSource(),
    profile: p.name,
    startedAt: started.toISOString(),
    durationSec: round((performance.now() - t0) / 1000, 1),
    machine: machine(),
    loadAvg: { start: load0, end: loadAvg() },
    pinned,
    serverCore: SERVER_CORE,
    clientCore: CLIENT_CORE,
    ...partial,
    servers,
    targets: checkClusterTargets(partial),
    background,
    disturbed,
  };
  const files = writeResults(
    opts.outDir,
    started,
    `cluster-${p.name}`,
    result,
    opts.writeLatest
      ? {
          name: latestOf("cluster", p.name),
          files: (svgName) => [
            ["md", clusterMarkdown(result, svgName)],
            ["svg", clusterSvg(result)],
          ],
        }
      : null,
  );
  tidyTemp(tmp, failures, log);
  return { result, files };
}

/**
 * BENCH_CLUSTER_SIDES=oneNode,twoNodes: only these sides, for trying a change (no latest files;
 * a target whose side did not run is missed).
 */
function onlySides(): ClusterSideKey[] | null {
  return envChoice("BENCH_CLUSTER_SIDES", SIDE_KEYS);
}

/** BENCH_CLUSTER_REPEATS=N: N repeats per side instead of the profile's (no latest files). */
function repeatsOverride(): number | null {
  const v = process.env.BENCH_CLUSTER_REPEATS;
  if (v === undefined || v === "") return null;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1 || n > 50)
    throw new Error(`BENCH_CLUSTER_REPEATS: a whole number from 1 to 50, not ${v}`);
  return n;
}

if (import.meta.main)
  runMain("bench:cluster", () =>
    profileMain({
      script: "bench/cluster.ts",
      profiles: ["full", "quick", "tiny"] as const,
      tag: "cluster",
      clientCore: CLIENT_CORE,
      quietNote: true,
      run: (profile) =>
        runCluster({
          profile,
          outDir: join(import.meta.dir, "results"),
          writeLatest: onlySides() === null && repeatsOverride() === null,
          progress: true,
        }),
      report: (result, arg) =>
        clusterMarkdown(
          result,
          arg === "full" ? "cluster-latest.svg" : `cluster-latest-${arg}.svg`,
        ),
    }),
  );
