// What room history costs fan-out: `npm run bench:history` (full, about 3½ minutes on a quiet
// machine) or `bun bench/history.ts tiny`. In one run and in rotation, each repeat on freshly
// started servers, a fresh redis-server and a fresh load client, the fan-out shape of
// bench/run.ts and bench/cluster.ts (10 rooms × 100 members on 4 users made through the REST
// API, 2 senders per room, closed loop with 4 messages in flight per sender; then 20k
// deliveries/s) against:
//   oneOn   Kabar, 1 node, ROOM_HISTORY_SIZE=100 (the default: every message kept in memory)
//   oneOff  Kabar, 1 node, ROOM_HISTORY_SIZE=0 (seq still given, nothing kept)
//   twoOn   Kabar, 2 nodes + redis-server, ROOM_HISTORY_SIZE=100 (RPUSH per room per batch in the Lua step)
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
import { mkdtempSync } from "node:fs";
import { cpus, tmpdir } from "node:os";
import { join } from "node:path";
import { tracked } from "./cleanup.ts";
import { type KabarSource, kabarSource, loadAvg } from "./cluster.ts";
import { CLUSTER_PROFILES, type ClusterProfile } from "./cluster-profiles.ts";
import { checkHistoryTargets, historyMarkdown, historySvg } from "./history-report.ts";
import type { FanoutRun } from "./paired.ts";
import { type Machine, machine } from "./proc.ts";
import { startRedis } from "./redis.ts";
import type { Failure, QuietWait, TargetCheck } from "./result.ts";
import { pinning, type ServerProc, startKabar } from "./servers.ts";
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

/** The sizes of the cluster fan-out benchmark, the same fields (bench/cluster-profiles.ts). */
export type HistoryProfile = ClusterProfile;

/** The cluster fan-out's sizes (bench/cluster-profiles.ts) with one rate, full, and none, tiny. */
export const HISTORY_PROFILES: Record<"full" | "tiny", HistoryProfile> = {
  full: {
    ...CLUSTER_PROFILES.full,
    rates: [{ label: "20k/s", deliveriesPerSec: 20_000 }],
    retries: 1,
  },
  tiny: { ...CLUSTER_PROFILES.tiny, rates: [] },
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

export async function runHistory(opts: {
  profile: "full" | "tiny";
  outDir: string;
  writeLatest: boolean;
  progress: boolean;
}): Promise<{ result: HistoryResult; files: string[] }> {
  const p = HISTORY_PROFILES[opts.profile];
  const started = new Date();
  const load0 = loadAvg();
  const t0 = performance.now();
  const log = progressLog("history", opts.progress, t0);
  const pinned = pinning && cpus().length >= 2;
  const core = (c: number) => (pinned ? c : -1);
  const tmp = mkdtempSync(join(tmpdir(), "kabar-bench-history-"));
  const dataDir = join(tmp, "data");
  const dbUrl = `sqlite://${join(dataDir, "kabar.db")}`;
  const kabarEnv = tunedEnv(dataDir);
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
  const fail = failRecorder(failures, log);
  const quiet = quietWaiter(p.quietWaitMs, background, log);
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
  log(`profile ${p.name}; ${pinned ? "pinned" : "not pinned"}; temp ${tmp}`);
  const measured = await runSides({
    name: "history",
    group: "hf",
    sides: HISTORY_SIDES,
    start: startSide,
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
  });
  const sides: Partial<Record<HistorySideKey, HistorySideResult>> = {};
  for (const [side, { runs, socketsPerNode }] of measured) {
    const nodes = SIDE_SPEC[side].nodes;
    sides[side] = {
      key: side,
      label: HISTORY_SIDE_LABELS[side],
      historySize: SIDE_SPEC[side].history,
      processes: nodes === 1 ? ["node"] : ["node A", "node B", "redis-server"],
      socketsPerNode,
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
  const files = writeResults(
    opts.outDir,
    started,
    `history-${p.name}`,
    result,
    opts.writeLatest
      ? {
          name: latestOf("history", p.name),
          files: (svgName) => [
            ["md", historyMarkdown(result, svgName)],
            ["svg", historySvg(result)],
          ],
        }
      : null,
  );
  tidyTemp(tmp, failures, log);
  return { result, files };
}

if (import.meta.main)
  runMain("bench:history", () =>
    profileMain({
      script: "bench/history.ts",
      tag: "history",
      clientCore: CLIENT_CORE,
      quietNote: true,
      run: (profile) =>
        runHistory({
          profile,
          outDir: join(import.meta.dir, "results"),
          writeLatest: true,
          progress: true,
        }),
      report: (result, arg) =>
        historyMarkdown(
          result,
          arg === "full" ? "history-latest.svg" : `history-latest-${arg}.svg`,
        ),
    }),
  );
