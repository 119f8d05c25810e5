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
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { cpus, tmpdir } from "node:os";
import { join } from "node:path";
import { Agent } from "./agent.ts";
import { stopOnSignals, tracked } from "./cleanup.ts";
import {
  CLUSTER_PROFILES,
  type ClusterProfile,
  type ClusterSideKey,
  SIDE_KEYS,
  SIDE_LABELS,
} from "./cluster-profiles.ts";
import { checkClusterTargets, clusterMarkdown, clusterSvg } from "./cluster-report.ts";
import type { FanoutCmd, FanoutResult, Target } from "./commands.ts";
import { combine, type FanoutMeta, type FanoutRun, rotation } from "./paired.ts";
import { type Machine, machine } from "./proc.ts";
import { type BenchRedis, startRedis } from "./redis.ts";
import type { Failure, QuietWait, TargetCheck } from "./result.ts";
import { QUIET_CORES, waitForQuiet } from "./run.ts";
import { names } from "./scenarios.ts";
import { makeUsers, pinning, type ServerProc, startBaseline, startKabar } from "./servers.ts";
import { round } from "./stats.ts";

export const SECRET = "kabar-bench-secret-key-0123456789abcdefghijklmnop";
export const ADMIN = { email: "admin@example.com", password: "bench-admin-password" };
export const PASSWORD = "bench-user-password";
const SERVER_CORE = 1;
const CLIENT_CORE = 0;
const BIG = "1000000000";

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

export const loadAvg = (): number[] =>
  readFileSync("/proc/loadavg", "utf8").split(" ").slice(0, 3).map(Number);

/** An environment as reported: secrets masked, the temp folder named as such. */
export function shown(env: Record<string, string>, tmp: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(env))
    out[k] = /SECRET|PASSWORD/.test(k) ? "(set)" : v.replaceAll(tmp, "<tmp>");
  return out;
}

/** Sockets a Kabar node (or the baseline) holds, from its health answer; -1 if unanswered. */
async function activeConnections(port: number): Promise<number> {
  try {
    const res = await fetch(`http://127.0.0.1:${port}/api/v1/ws/health`);
    const body = (await res.json()) as { active_connections?: number };
    return typeof body.active_connections === "number" ? body.active_connections : -1;
  } catch {
    return -1;
  }
}

/** Servers of one side, started for one repeat. */
interface Running {
  pids: number[];
  ports: number[];
  stop(): Promise<void>;
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
  const p = CLUSTER_PROFILES[opts.profile];
  const started = new Date();
  const load0 = loadAvg();
  const t0 = performance.now();
  const log = (msg: string) => {
    if (opts.progress)
      process.stderr.write(`[cluster ${((performance.now() - t0) / 1000).toFixed(1)}s] ${msg}\n`);
  };
  const pinned = pinning && cpus().length >= 2;
  const core = (c: number) => (pinned ? c : -1);
  const tmp = mkdtempSync(join(tmpdir(), "kabar-bench-cluster-"));
  const dataDir = join(tmp, "data");
  const dbUrl = `sqlite://${join(dataDir, "kabar.db")}`;
  const deployment = {
    ENVIRONMENT: "local",
    SECRET_KEY: SECRET,
    DATA_DIR: dataDir,
    FIRST_SUPERUSER: ADMIN.email,
    FIRST_SUPERUSER_PASSWORD: ADMIN.password,
  };
  // bench/run.ts's tuned settings: no log lines, no bot, no limit in the way.
  const kabarEnv = {
    ...deployment,
    LOG_LEVEL: "warn",
    BOT_ENABLED: "false",
    MAX_CONNECTIONS_PER_USER: BIG,
    MAX_ROOMS: BIG,
    MAX_ROOMS_PER_USER: BIG,
    ROOM_EMPTY_TTL_SECONDS: "86400",
    RATE_LIMIT_CAPACITY: BIG,
    RATE_LIMIT_REFILL_PER_SECOND: BIG,
  };
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
  const fail = (phase: string, e: unknown) => {
    const error = (e instanceof Error ? e.message : String(e)).slice(0, 300);
    failures.push({ phase, error });
    log(`  FAILED ${phase}: ${error}`);
  };
  const quiet = async (phase: string) => {
    if (p.quietWaitMs <= 0) return;
    const w = await waitForQuiet(phase, p.quietWaitMs);
    background.push(w);
    if (!w.quiet) log(`  machine busy before ${phase}: other processes use ${w.otherCores} cores`);
  };
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
  const reps = new Map<string, FanoutResult[]>();
  const perNode = new Map<ClusterSideKey, number[][]>();
  const modes = [
    { label: "max (closed loop)", mode: "closed" as const, rate: null, ms: p.closedMs },
    ...p.rates.map((r) => ({
      label: r.label,
      mode: "rate" as const,
      rate: r.deliveriesPerSec,
      ms: p.rateMs,
    })),
  ];
  const key = (side: ClusterSideKey, label: string) => `${side}\n${label}`;
  const hosts = Array.from({ length: p.hosts }, (_, k) => `127.0.0.${k + 1}`);
  const rooms = names("cf", p.rooms);
  try {
    log(`profile ${p.name}; ${pinned ? "pinned" : "not pinned"}; temp ${tmp}`);
    const admin = await startKabar(kabarEnv, serverOpts("admin"));
    const stopAdmin = tracked(() => admin.stop());
    let tokens: string[];
    try {
      const emails = Array.from({ length: p.users }, (_, k) => `cluster${k}@example.com`);
      tokens = await makeUsers(admin.port, ADMIN, emails, PASSWORD);
    } finally {
      await stopAdmin();
    }
    log(`${tokens.length} users made through the API in ${dbUrl.replace(tmp, "<tmp>")}`);
    for (let rep = 0; rep < p.repeats; rep++) {
      for (const side of rotation(SIDE_KEYS, rep)) {
        try {
          const running = await starts[side]();
          try {
            const agent = Agent.start(`cluster-${side}`, {
              core: core(CLIENT_CORE),
              progress: opts.progress,
            });
            const stopAgent = tracked(() => agent.stop());
            try {
              log(
                `  ${side}, repeat ${rep + 1}/${p.repeats} (server pids ${running.pids.join(", ")})`,
              );
              const target: Target = {
                hosts,
                port: running.ports[0] ?? 0,
                tokens,
                ...(running.ports.length > 1 ? { ports: running.ports, portStride: p.rooms } : {}),
              };
              const open = await agent.call(
                {
                  op: "open",
                  group: "cf",
                  target,
                  count: p.rooms * p.members,
                  concurrency: 64,
                  rooms,
                  create: true,
                  timeoutMs: 10_000,
                },
                120_000,
              );
              if (open.failed > 0)
                throw new Error(`${open.failed} sockets failed: ${open.errors[0] ?? "?"}`);
              const counts = await Promise.all(
                running.ports.map((port) => activeConnections(port)),
              );
              perNode.set(side, [...(perNode.get(side) ?? []), counts]);
              for (const m of modes) {
                const phase = `cluster fan-out ${m.label} ${side} #${rep + 1}`;
                const cmd: FanoutCmd = {
                  op: "fanout",
                  group: "cf",
                  senders: p.senders,
                  mode: m.mode,
                  window: p.window,
                  deliveriesPerSec: m.rate ?? 0,
                  warmupMs: p.warmupMs,
                  durationMs: m.ms,
                  drainMs: 10_000,
                  maxMessages: p.maxMessages,
                  serverPid: running.pids[0] ?? 0,
                  extraPids: running.pids.slice(1),
                  suffix: "",
                };
                let result: FanoutResult | null = null;
                for (let attempt = 0; attempt <= p.retries; attempt++) {
                  await quiet(phase);
                  result = await agent.call(cmd, m.ms + 60_000);
                  const other = round((result.otherCpuSec * 1000) / result.windowMs, 2);
                  if (other < QUIET_CORES) break;
                  const retried = attempt < p.retries;
                  disturbed.push({ phase, otherCores: other, retried });
                  log(
                    `  other processes used ${other} cores in ${phase}${retried ? ": again" : ""}`,
                  );
                }
                if (result === null) throw new Error(`${phase}: no result`);
                const k = key(side, m.label);
                reps.set(k, [...(reps.get(k) ?? []), result]);
              }
              await agent.call({ op: "close", group: "cf", timeoutMs: 5000 }, 10_000);
            } finally {
              await stopAgent();
            }
          } finally {
            await running.stop();
          }
        } catch (e) {
          fail(`cluster fan-out ${side} #${rep + 1}`, e);
        }
      }
    }
  } catch (e) {
    fail("setup", e);
  }
  const sides: Partial<Record<ClusterSideKey, ClusterSideResult>> = {};
  for (const side of SIDE_KEYS) {
    const runs: FanoutRun[] = [];
    for (const m of modes) {
      const got = reps.get(key(side, m.label)) ?? [];
      if (got.length === 0) continue;
      const meta: FanoutMeta = {
        label: m.label,
        mode: m.mode,
        rate: m.rate,
        load: "shared users",
        senders: p.senders,
        users: p.users,
        suffix: "",
        perSenderMsgPerSec:
          m.rate === null ? null : round(m.rate / p.members / p.rooms / p.senders, 3),
      };
      runs.push(combine(meta, got));
    }
    if (runs.length === 0) continue;
    const settings = servers.find((s) => s.side === side);
    sides[side] = {
      key: side,
      label: SIDE_LABELS[side],
      processes: settings?.processes ?? [],
      socketsPerNode: perNode.get(side) ?? [],
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
  mkdirSync(opts.outDir, { recursive: true });
  const stamp = started.toISOString().replace(/[:.]/g, "-");
  const json = `${JSON.stringify(result, null, 2)}\n`;
  const files = [join(opts.outDir, `${stamp}-cluster-${p.name}.json`)];
  writeFileSync(files[0] as string, json);
  if (opts.writeLatest) {
    const base = join(
      opts.outDir,
      p.name === "full" ? "cluster-latest" : `cluster-latest-${p.name}`,
    );
    const svgName = `${base.slice(opts.outDir.length + 1)}.svg`;
    files.push(`${base}.json`, `${base}.md`, `${base}.svg`);
    writeFileSync(`${base}.json`, json);
    writeFileSync(`${base}.md`, clusterMarkdown(result, svgName));
    writeFileSync(`${base}.svg`, clusterSvg(result));
  }
  if (failures.length === 0) rmSync(tmp, { recursive: true, force: true });
  else log(`${failures.length} phase(s) failed; server logs kept in ${tmp}`);
  return { result, files };
}

async function main(): Promise<number> {
  const arg = process.argv[2] ?? "full";
  if (arg !== "full" && arg !== "tiny") {
    console.error("usage: bun bench/cluster.ts [full|tiny]");
    return 2;
  }
  // The harness itself only orchestrates; keep it off the server core.
  if (pinning && cpus().length >= 2)
    Bun.spawnSync(["taskset", "-apc", String(CLIENT_CORE), String(process.pid)], {
      stdout: "ignore",
    });
  stopOnSignals();
  process.stderr.write(
    `[cluster] load average ${loadAvg().join(" ")}; quiet means other processes < ${QUIET_CORES} cores\n`,
  );
  const { result, files } = await runCluster({
    profile: arg,
    outDir: join(import.meta.dir, "results"),
    writeLatest: true,
    progress: true,
  });
  console.log(
    clusterMarkdown(result, arg === "full" ? "cluster-latest.svg" : `cluster-latest-${arg}.svg`),
  );
  console.log(`wrote ${files.join(", ")}`);
  const missed = result.targets.filter((t) => t.met === false).length;
  if (missed > 0) console.log(`${missed} target(s) not met`);
  return 0;
}

if (import.meta.main) {
  main().then(
    (code) => process.exit(code),
    (e) => {
      console.error(`bench:cluster: ${e instanceof Error ? e.message : String(e)}`);
      process.exit(1);
    },
  );
}
