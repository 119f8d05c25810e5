// Reconnect storm: `npm run bench:storm` (full, about 20 s) or `bun bench/storm.ts tiny`.
// Two Kabar nodes (A and B, `bun src/main.ts` on their own ports) and a redis-server of the
// bench's own, the users written straight into the SQLite file both nodes share (bench/users.ts,
// one user per socket). One load-client process (bench/history-client.ts) opens R rooms × M
// members, half of each room on node A and half on node B, the room's first `senders` members
// (on A) sending so that all rooms together get `deliveriesPerSec` deliveries. After `warmupMs`
// node B is SIGKILLed; its clients reconnect to node A at once with `join_room` + `since` (the
// epoch and last seq each saw) while the senders go on. Then: the share that recovered, holes and
// repeats in every socket's seq list (each must be exactly 1..N across the disconnect), and the
// time from the kill until every reconnected socket had caught up with its room's latest seq.
// Servers and Redis are pinned to one core, the client to the other (as bench/cluster.ts); every
// process started is stopped, also on a failure or Ctrl-C. Writes
// bench/results/<stamp>-storm-<profile>.json and storm-latest(.json|.md) (full) or
// storm-latest-<profile>.* (others).
import { mkdtempSync } from "node:fs";
import { cpus, tmpdir } from "node:os";
import { join } from "node:path";
import { tracked } from "./cleanup.ts";
import { type KabarSource, kabarSource, loadAvg } from "./cluster.ts";
import type {
  StormCollectResult,
  StormOpenCmd,
  StormOpenResult,
  StormStopResult,
} from "./history-client.ts";
import { checkStormTargets, stormMarkdown } from "./history-report.ts";
import { LineAgent } from "./line-agent.ts";
import { cpuSeconds, type Machine, machine } from "./proc.ts";
import { startRedis } from "./redis.ts";
import type { Failure, QuietWait, TargetCheck } from "./result.ts";
import { names } from "./scenarios.ts";
import { pinning, type ServerProc, startKabar } from "./servers.ts";
import {
  failRecorder,
  latestOf,
  profileMain,
  progressLog,
  runMain,
  shown,
  socketUsers,
  tidyTemp,
  tunedEnv,
  waitForQuiet,
  writeResults,
} from "./setup.ts";
import { activeConnections } from "./side-runs.ts";
import { round } from "./stats.ts";

const CLIENT = join(import.meta.dir, "history-client.ts");
const SERVER_CORE = 1;
const CLIENT_CORE = 0;

export interface StormProfile {
  name: "full" | "tiny";
  rooms: number;
  members: number;
  /** Senders per room: its first members, all on node A. */
  senders: number;
  /** Deliveries per second, all rooms together (each message reaches the room's members). */
  deliveriesPerSec: number;
  /** Destination addresses 127.0.0.1 … 127.0.0.H; source addresses 127.0.0.101 … 127.0.0.(100+S). */
  hosts: number;
  sources: number;
  /** Messages flow this long before the kill, and this long after it. */
  warmupMs: number;
  afterKillMs: number;
  /** After the senders stop: wait at most this long for every socket to hold every message. */
  drainMs: number;
  /** Before sending starts, wait up to this long for other processes to go quiet. */
  quietWaitMs: number;
  concurrency: number;
  reconnect: StormOpenCmd["reconnect"];
}

export const STORM_PROFILES: Record<StormProfile["name"], StormProfile> = {
  full: {
    name: "full",
    rooms: 10,
    members: 100,
    senders: 5,
    deliveriesPerSec: 5000,
    hosts: 16,
    sources: 16,
    warmupMs: 5000,
    afterKillMs: 10_000,
    drainMs: 5000,
    quietWaitMs: 20_000,
    concurrency: 64,
    reconnect: { maxAttempts: 20, retryMs: 250, timeoutMs: 5000, giveUpMs: 20_000 },
  },
  tiny: {
    name: "tiny",
    rooms: 2,
    members: 50,
    senders: 2,
    deliveriesPerSec: 500,
    hosts: 2,
    sources: 2,
    warmupMs: 1500,
    afterKillMs: 2500,
    drainMs: 2000,
    quietWaitMs: 0,
    concurrency: 32,
    reconnect: { maxAttempts: 10, retryMs: 200, timeoutMs: 3000, giveUpMs: 6000 },
  },
};

/** Messages per second each sender sends for the profile's delivery rate. */
export const perSenderRate = (p: StormProfile): number =>
  p.deliveriesPerSec / p.members / p.rooms / p.senders;

export interface StormResult {
  version: 1;
  kind: "reconnect storm";
  kabar: KabarSource;
  profile: StormProfile["name"];
  startedAt: string;
  durationSec: number;
  machine: Machine;
  loadAvg: { start: number[]; end: number[] };
  pinned: boolean;
  settings: StormProfile & { perSenderMsgPerSec: number };
  program: string;
  env: Record<string, string>;
  open?: StormOpenResult;
  /** Sockets node A and node B held before the kill, and node A after the storm (health). */
  health?: { a: number; b: number; aAfter: number | null };
  stop?: StormStopResult;
  collect?: StormCollectResult;
  /** Node A's and redis-server's CPU from the kill until `afterKillMs` later. */
  cpu?: { nodeA: number; redis: number; windowMs: number };
  failures: Failure[];
  targets: TargetCheck[];
  background: QuietWait[];
}

const wall = () => performance.timeOrigin + performance.now();

export async function runStorm(opts: {
  profile: StormProfile["name"];
  outDir: string;
  writeLatest: boolean;
  progress: boolean;
  /** Settings on top of the profile's (e.g. ROOM_HISTORY_SIZE=0: a control run that must show gaps). */
  env?: Record<string, string>;
}): Promise<{ result: StormResult; files: string[] }> {
  const p = STORM_PROFILES[opts.profile];
  const started = new Date();
  const load0 = loadAvg();
  const t0 = performance.now();
  const log = progressLog("storm", opts.progress, t0);
  const pinned = pinning && cpus().length >= 2;
  const core = (c: number) => (pinned ? c : -1);
  const tmp = mkdtempSync(join(tmpdir(), "kabar-bench-storm-"));
  const dataDir = join(tmp, "data");
  const dbUrl = `sqlite://${join(dataDir, "kabar.db")}`;
  // bench/run.ts's tuned settings, history at its default size (stated, not left implicit).
  const kabarEnv = {
    ...tunedEnv(dataDir),
    ROOM_HISTORY_SIZE: "100",
    ...opts.env,
  };
  const failures: Failure[] = [];
  const background: QuietWait[] = [];
  const fail = failRecorder(failures, log);
  let logs = 0;
  const serverOpts = (name: string) => ({
    core: core(SERVER_CORE),
    logFile: join(tmp, `${name}-${++logs}.log`),
    gcDir: tmp,
  });
  const out: Partial<StormResult> = {};
  const stops: (() => Promise<void>)[] = [];
  const stopAll = async () => {
    for (const s of stops.splice(0).reverse()) await s();
  };
  const n = p.rooms * p.members;
  try {
    log(`profile ${p.name}; ${pinned ? "pinned" : "not pinned"}; temp ${tmp}`);
    const { tokensFile } = await socketUsers({
      env: kabarEnv,
      dataDir,
      tmp,
      count: n,
      prefix: "storm",
      server: serverOpts("admin"),
    });
    log(`${n} users in ${dbUrl.replace(tmp, "<tmp>")}`);

    const redis = await startRedis(core(SERVER_CORE));
    stops.push(tracked(() => redis.stop()));
    const env = { ...kabarEnv, DATABASE_URL: dbUrl, REDIS_URL: redis.url };
    const start = async (name: string): Promise<ServerProc> => {
      const s = await startKabar(env, serverOpts(name));
      stops.push(tracked(() => s.stop()));
      return s;
    };
    const a = await start("nodeA");
    const b = await start("nodeB");
    const agent = LineAgent.start("storm-client", CLIENT, {
      core: core(CLIENT_CORE),
      progress: opts.progress,
    });
    stops.push(tracked(() => agent.stop()));
    const hosts = Array.from({ length: p.hosts }, (_, k) => `127.0.0.${k + 1}`);
    const sources = Array.from({ length: p.sources }, (_, k) => `127.0.0.${k + 101}`);
    const openCmd: StormOpenCmd = {
      op: "open",
      file: tokensFile,
      rooms: names("storm", p.rooms),
      members: p.members,
      senders: p.senders,
      hosts,
      sources,
      portA: a.port,
      portB: b.port,
      concurrency: p.concurrency,
      timeoutMs: 10_000,
      reconnect: p.reconnect,
    };
    const { op: _op, ...openArgs } = openCmd;
    out.open = await agent.call<StormOpenResult>({ op: "open", ...openArgs }, 120_000);
    log(
      `opened ${out.open.opened} (A ${out.open.onA}, B ${out.open.onB}), failed ${out.open.failed}`,
    );
    if (out.open.failed > 0)
      throw new Error(`${out.open.failed} sockets failed: ${out.open.errors[0] ?? "?"}`);
    const health = { a: await activeConnections(a.port), b: await activeConnections(b.port) };
    if (p.quietWaitMs > 0) {
      const w = await waitForQuiet("storm", p.quietWaitMs);
      background.push(w);
      if (!w.quiet) log(`  machine busy before sending: other processes use ${w.otherCores} cores`);
    }
    const total = p.warmupMs + p.afterKillMs;
    await agent.call(
      {
        op: "send",
        perSenderMsgPerSec: perSenderRate(p),
        maxMessages: Math.ceil(((p.deliveriesPerSec / p.members) * total * 1.2) / 1000) + 100,
        maxMs: total + 5000,
      },
      10_000,
    );
    log(`sending: ${p.deliveriesPerSec} deliveries/s (${perSenderRate(p)} msg/s per sender)`);
    await Bun.sleep(p.warmupMs);
    const cpuA0 = cpuSeconds(a.pid);
    const cpuR0 = cpuSeconds(redis.pid);
    const killAt = wall();
    process.kill(b.pid, "SIGKILL");
    const k0 = performance.now();
    log(`node B (pid ${b.pid}) SIGKILLed`);
    await Bun.sleep(p.afterKillMs);
    out.cpu = {
      nodeA: round(cpuSeconds(a.pid) - cpuA0, 2),
      redis: round(cpuSeconds(redis.pid) - cpuR0, 2),
      windowMs: round(performance.now() - k0, 1),
    };
    out.stop = await agent.call<StormStopResult>({ op: "stop" }, 10_000);
    out.collect = await agent.call<StormCollectResult>(
      { op: "collect", killAt, drainMs: p.drainMs },
      p.drainMs + 30_000,
    );
    out.health = { ...health, aAfter: await activeConnections(a.port) };
    const c = out.collect;
    log(
      `closed ${c.closed}, rejoined ${c.rejoined}, recovered ${c.recovered}, holes ${c.holes}, duplicates ${c.duplicates}, all caught up after ${c.allCaughtUpMs ?? "–"} ms`,
    );
  } catch (e) {
    fail("storm", e);
  } finally {
    await stopAll();
  }
  const settings = { ...p, perSenderMsgPerSec: round(perSenderRate(p), 3) };
  const partial = { settings, ...out, failures };
  const result: StormResult = {
    version: 1,
    kind: "reconnect storm",
    kabar: kabarSource(),
    profile: p.name,
    startedAt: started.toISOString(),
    durationSec: round((performance.now() - t0) / 1000, 1),
    machine: machine(),
    loadAvg: { start: load0, end: loadAvg() },
    pinned,
    program:
      'bun src/main.ts ×2 (node A, node B; own ports); /usr/bin/redis-server --port P --save "" --appendonly no',
    env: shown(
      { ...kabarEnv, DATABASE_URL: dbUrl, REDIS_URL: "redis://127.0.0.1:<free port>" },
      tmp,
    ),
    ...partial,
    targets: checkStormTargets(partial),
    background,
  };
  const files = writeResults(
    opts.outDir,
    started,
    `storm-${p.name}`,
    result,
    opts.writeLatest
      ? { name: latestOf("storm", p.name), files: () => [["md", stormMarkdown(result)]] }
      : null,
  );
  tidyTemp(tmp, failures, log);
  return { result, files };
}

if (import.meta.main)
  runMain("bench:storm", () =>
    profileMain({
      script: "bench/storm.ts",
      tag: "storm",
      clientCore: CLIENT_CORE,
      quietNote: false,
      run: (profile) =>
        runStorm({
          profile,
          outDir: join(import.meta.dir, "results"),
          writeLatest: true,
          progress: true,
        }),
      report: (result) => stormMarkdown(result),
    }),
  );
