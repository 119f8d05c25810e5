// What room history costs fan-out: `npm run bench:history` (full, about 3½ minutes on a quiet
// machine) or `bun bench/history.ts tiny`. In one run and in rotation, each repeat on freshly
// started servers, a fresh redis-server and a fresh load client, the fan-out shape of
// bench/run.ts and bench/cluster.ts (10 rooms × 100 members on 4 users made through the REST
// API, 2 senders per room, closed loop with 4 messages in flight per sender; then 20k
// deliveries/s) against:
//   oneOn   Kabar, 1 node, ROOM_HISTORY_SIZE=100 (the default: every message kept in memory)
//   oneOff  Kabar, 1 node, ROOM_HISTORY_SIZE=0 (seq still given, nothing kept)
//   twoOn   Kabar, 2 nodes + redis-server, ROOM_HISTORY_SIZE=100 (XADD per message in the Lua step)
//   twoOff  Kabar, 2 nodes + redis-server, ROOM_HISTORY_SIZE=0
// Every server process (the nodes and the bench's own redis-server) is pinned to the server core,
// the load client to the other; server CPU is read from /proc/<pid>/stat of each of them at the
// window's edges (bench/fanout.ts), so a cluster side's deliveries per CPU-second count both
// nodes and Redis. In a cluster side socket i goes to node ⌊i / 10⌋ mod 2 (each room 50 + 50, one
// sender on each node). Before each window the harness waits (bounded) for other processes to go
// quiet; a window in which they used ≥ QUIET_CORES anyway is run again (at most `retries` times).
// Writes bench/results/<stamp>-history-<profile>.json and history-latest(.json|.md|.svg) (full;
// other profiles history-latest-<profile>.*). A repeat that throws is recorded; its targets are
// then missed, never passed (bench/history-report.ts).
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { cpus, tmpdir } from "node:os";
import { join } from "node:path";
import { Agent } from "./agent.ts";
import { stopOnSignals, tracked } from "./cleanup.ts";
import {
  ADMIN,
  type KabarSource,
  kabarSource,
  loadAvg,
  PASSWORD,
  SECRET,
  shown,
} from "./cluster.ts";
import type { FanoutCmd, FanoutResult, Target } from "./commands.ts";
import { checkHistoryTargets, historyMarkdown, historySvg } from "./history-report.ts";
import { combine, type FanoutMeta, type FanoutRun, rotation } from "./paired.ts";
import { type Machine, machine } from "./proc.ts";
import type { FanoutRate } from "./profiles.ts";
import { startRedis } from "./redis.ts";
import type { Failure, QuietWait, TargetCheck } from "./result.ts";
import { QUIET_CORES, waitForQuiet } from "./run.ts";
import { names } from "./scenarios.ts";
import { makeUsers, pinning, type ServerProc, startKabar } from "./servers.ts";
import { round } from "./stats.ts";

const SERVER_CORE = 1;
const CLIENT_CORE = 0;
const BIG = "1000000000";

export type HistorySideKey = "oneOn" | "oneOff" | "twoOn" | "twoOff";
export const HISTORY_SIDES: HistorySideKey[] = ["oneOn", "oneOff", "twoOn", "twoOff"];
export const HISTORY_SIDE_LABELS: Record<HistorySideKey, string> = {
  oneOn: "1 node, history 100",
  oneOff: "1 node, history 0",
  twoOn: "2 nodes + Redis, history 100",
  twoOff: "2 nodes + Redis, history 0",
};
const SIDE_SPEC: Record<HistorySideKey, { nodes: number; history: number }> = {
  oneOn: { nodes: 1, history: 100 },
  oneOff: { nodes: 1, history: 0 },
  twoOn: { nodes: 2, history: 100 },
  twoOff: { nodes: 2, history: 0 },
};

export interface HistoryProfile {
  name: "full" | "tiny";
  hosts: number;
  users: number;
  rooms: number;
  members: number;
  senders: number;
  window: number;
  closedMs: number;
  rates: FanoutRate[];
  rateMs: number;
  warmupMs: number;
  maxMessages: number;
  repeats: number;
  quietWaitMs: number;
  retries: number;
}

export const HISTORY_PROFILES: Record<HistoryProfile["name"], HistoryProfile> = {
  full: {
    name: "full",
    hosts: 8,
    users: 4,
    rooms: 10,
    members: 100,
    senders: 2,
    window: 4,
    closedMs: 4000,
    rates: [{ label: "20k/s", deliveriesPerSec: 20_000 }],
    rateMs: 4000,
    warmupMs: 1000,
    maxMessages: 4_000_000,
    repeats: 4,
    quietWaitMs: 20_000,
    retries: 1,
  },
  tiny: {
    name: "tiny",
    hosts: 2,
    users: 2,
    rooms: 2,
    members: 10,
    senders: 1,
    window: 2,
    closedMs: 300,
    rates: [],
    rateMs: 300,
    warmupMs: 0,
    maxMessages: 300,
    repeats: 1,
    quietWaitMs: 0,
    retries: 0,
  },
};

export interface HistorySideResult {
  key: HistorySideKey;
  label: string;
  historySize: number;
  processes: string[];
  /** Sockets each node held after the group opened (/api/v1/ws/health), per repeat. */
  socketsPerNode: number[][];
  runs: FanoutRun[];
}

export interface HistoryResult {
  version: 1;
  kind: "history fan-out";
  kabar: KabarSource;
  profile: HistoryProfile["name"];
  startedAt: string;
  durationSec: number;
  machine: Machine;
  loadAvg: { start: number[]; end: number[] };
  pinned: boolean;
  serverCore: number;
  clientCore: number;
  settings: HistoryProfile;
  sides: Partial<Record<HistorySideKey, HistorySideResult>>;
  servers: { side: HistorySideKey; program: string; env: Record<string, string> }[];
  failures: Failure[];
  targets: TargetCheck[];
  background: QuietWait[];
  disturbed: { phase: string; otherCores: number; retried: boolean }[];
}

async function activeConnections(port: number): Promise<number> {
  try {
    const res = await fetch(`http://127.0.0.1:${port}/api/v1/ws/health`);
    const body = (await res.json()) as { active_connections?: number };
    return typeof body.active_connections === "number" ? body.active_connections : -1;
  } catch {
    return -1;
  }
}

interface Running {
  pids: number[];
  ports: number[];
  stop(): Promise<void>;
}

export async function runHistory(opts: {
  profile: HistoryProfile["name"];
  outDir: string;
  writeLatest: boolean;
  progress: boolean;
}): Promise<{ result: HistoryResult; files: string[] }> {
  const p = HISTORY_PROFILES[opts.profile];
  const started = new Date();
  const load0 = loadAvg();
  const t0 = performance.now();
  const log = (msg: string) => {
    if (opts.progress)
      process.stderr.write(`[history ${((performance.now() - t0) / 1000).toFixed(1)}s] ${msg}\n`);
  };
  const pinned = pinning && cpus().length >= 2;
  const core = (c: number) => (pinned ? c : -1);
  const tmp = mkdtempSync(join(tmpdir(), "kabar-bench-history-"));
  const dataDir = join(tmp, "data");
  const dbUrl = `sqlite://${join(dataDir, "kabar.db")}`;
  const deployment = {
    ENVIRONMENT: "local",
    SECRET_KEY: SECRET,
    DATA_DIR: dataDir,
    FIRST_SUPERUSER: ADMIN.email,
    FIRST_SUPERUSER_PASSWORD: ADMIN.password,
  };
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
  const envOf = (side: HistorySideKey, redisUrl: string | null): Record<string, string> => ({
    ...kabarEnv,
    ROOM_HISTORY_SIZE: String(SIDE_SPEC[side].history),
    ...(redisUrl === null ? {} : { DATABASE_URL: dbUrl, REDIS_URL: redisUrl }),
  });
  const servers = HISTORY_SIDES.map((side) => ({
    side,
    program:
      SIDE_SPEC[side].nodes === 1
        ? "bun src/main.ts"
        : 'bun src/main.ts (×2, own ports); /usr/bin/redis-server --port P --save "" --appendonly no',
    env: shown(
      envOf(side, SIDE_SPEC[side].nodes === 1 ? null : "redis://127.0.0.1:<free port>"),
      tmp,
    ),
  }));
  const failures: Failure[] = [];
  const background: QuietWait[] = [];
  const disturbed: HistoryResult["disturbed"] = [];
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
  /** Starts one side's servers (redis-server first for a cluster side; its pid listed last). */
  const startSide = async (side: HistorySideKey): Promise<Running> => {
    const stops: (() => Promise<void>)[] = [];
    const stop = async () => {
      for (const s of stops.splice(0).reverse()) await s();
    };
    try {
      const pids: number[] = [];
      const ports: number[] = [];
      let redisPid: number | null = null;
      let redisUrl: string | null = null;
      if (SIDE_SPEC[side].nodes > 1) {
        const redis = await startRedis(core(SERVER_CORE));
        stops.push(tracked(() => redis.stop()));
        redisPid = redis.pid;
        redisUrl = redis.url;
      }
      for (let k = 0; k < SIDE_SPEC[side].nodes; k++) {
        const s: ServerProc = await startKabar(envOf(side, redisUrl), serverOpts(`${side}${k}`));
        stops.push(tracked(() => s.stop()));
        pids.push(s.pid);
        ports.push(s.port);
      }
      if (redisPid !== null) pids.push(redisPid);
      return { pids, ports, stop };
    } catch (e) {
      await stop();
      throw e;
    }
  };
  const reps = new Map<string, FanoutResult[]>();
  const perNode = new Map<HistorySideKey, number[][]>();
  const modes = [
    { label: "max (closed loop)", mode: "closed" as const, rate: null, ms: p.closedMs },
    ...p.rates.map((r) => ({
      label: r.label,
      mode: "rate" as const,
      rate: r.deliveriesPerSec,
      ms: p.rateMs,
    })),
  ];
  const key = (side: HistorySideKey, label: string) => `${side}\n${label}`;
  const hosts = Array.from({ length: p.hosts }, (_, k) => `127.0.0.${k + 1}`);
  const rooms = names("hf", p.rooms);
  try {
    log(`profile ${p.name}; ${pinned ? "pinned" : "not pinned"}; temp ${tmp}`);
    const admin = await startKabar(kabarEnv, serverOpts("admin"));
    const stopAdmin = tracked(() => admin.stop());
    let tokens: string[];
    try {
      const emails = Array.from({ length: p.users }, (_, k) => `history${k}@example.com`);
      tokens = await makeUsers(admin.port, ADMIN, emails, PASSWORD);
    } finally {
      await stopAdmin();
    }
    for (let rep = 0; rep < p.repeats; rep++) {
      for (const side of rotation(HISTORY_SIDES, rep)) {
        try {
          const running = await startSide(side);
          try {
            const agent = Agent.start(`history-${side}`, {
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
                  group: "hf",
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
                const phase = `history fan-out ${m.label} ${side} #${rep + 1}`;
                const cmd: FanoutCmd = {
                  op: "fanout",
                  group: "hf",
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
              await agent.call({ op: "close", group: "hf", timeoutMs: 5000 }, 10_000);
            } finally {
              await stopAgent();
            }
          } finally {
            await running.stop();
          }
        } catch (e) {
          fail(`history fan-out ${side} #${rep + 1}`, e);
        }
      }
    }
  } catch (e) {
    fail("setup", e);
  }
  const sides: Partial<Record<HistorySideKey, HistorySideResult>> = {};
  for (const side of HISTORY_SIDES) {
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
    const nodes = SIDE_SPEC[side].nodes;
    sides[side] = {
      key: side,
      label: HISTORY_SIDE_LABELS[side],
      historySize: SIDE_SPEC[side].history,
      processes: nodes === 1 ? ["node"] : ["node A", "node B", "redis-server"],
      socketsPerNode: perNode.get(side) ?? [],
      runs,
    };
  }
  const partial = { settings: p, sides, failures };
  const result: HistoryResult = {
    version: 1,
    kind: "history fan-out",
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
    targets: checkHistoryTargets(partial),
    background,
    disturbed,
  };
  mkdirSync(opts.outDir, { recursive: true });
  const stamp = started.toISOString().replace(/[:.]/g, "-");
  const json = `${JSON.stringify(result, null, 2)}\n`;
  const files = [join(opts.outDir, `${stamp}-history-${p.name}.json`)];
  writeFileSync(files[0] as string, json);
  if (opts.writeLatest) {
    const base = join(
      opts.outDir,
      p.name === "full" ? "history-latest" : `history-latest-${p.name}`,
    );
    const svgName = `${base.slice(opts.outDir.length + 1)}.svg`;
    files.push(`${base}.json`, `${base}.md`, `${base}.svg`);
    writeFileSync(`${base}.json`, json);
    writeFileSync(`${base}.md`, historyMarkdown(result, svgName));
    writeFileSync(`${base}.svg`, historySvg(result));
  }
  if (failures.length === 0) rmSync(tmp, { recursive: true, force: true });
  else log(`${failures.length} phase(s) failed; server logs kept in ${tmp}`);
  return { result, files };
}

async function main(): Promise<number> {
  const arg = process.argv[2] ?? "full";
  if (arg !== "full" && arg !== "tiny") {
    console.error("usage: bun bench/history.ts [full|tiny]");
    return 2;
  }
  if (pinning && cpus().length >= 2)
    Bun.spawnSync(["taskset", "-apc", String(CLIENT_CORE), String(process.pid)], {
      stdout: "ignore",
    });
  stopOnSignals();
  process.stderr.write(
    `[history] load average ${loadAvg().join(" ")}; quiet means other processes < ${QUIET_CORES} cores\n`,
  );
  const { result, files } = await runHistory({
    profile: arg,
    outDir: join(import.meta.dir, "results"),
    writeLatest: true,
    progress: true,
  });
  console.log(
    historyMarkdown(result, arg === "full" ? "history-latest.svg" : `history-latest-${arg}.svg`),
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
      console.error(`bench:history: ${e instanceof Error ? e.message : String(e)}`);
      process.exit(1);
    },
  );
}
