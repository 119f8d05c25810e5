// Faults in cluster mode: `npm run bench:faults` (full, about 1½ minutes) or
// `bun bench/faults.ts tiny`. Two Kabar nodes (`bun src/main.ts`, own ports) sharing a
// redis-server and a PostgreSQL of the bench's own (bench/redis.ts, bench/pg.ts: a throwaway
// cluster on a free port — never the machine's PostgreSQL, which other programs use), servers
// pinned to one core, load clients to the other. Steady members (bench/steady-client.ts: R rooms
// × M, each room's members alternating between the nodes, a sender on each node) count every
// seq of every epoch of their room; a member whose socket closes is counted as closed.
// 1. Redis killed (SIGKILL) under load, started again empty on the same port after `downMs`:
//    time from the restart until every member got a message sent after it; messages lost and
//    repeated for the members that stayed connected; messages refused (`unavailable`, told to
//    the sender) and unanswered (never refused, never echoed) while it was down.
// 2. PostgreSQL stopped (`pg_ctl stop -m immediate`) under load, started after `downMs`: the
//    messages go on (users are in memory), logins get 503 while it is down; time from the start
//    until a login succeeds on both nodes; lost and repeated as above.
// 3. A node SIGKILLed under load: the reconnect storm (bench/storm.ts, its own two nodes and
//    Redis; the killed node's clients come back on the survivor with `join_room` + `since`): time
//    until all caught up, holes and repeats over every socket.
// Writes bench/results/<stamp>-faults-<profile>.json and faults-latest(.json|.md) (full) or
// faults-latest-<profile>.* (tiny).
import { mkdtempSync, writeFileSync } from "node:fs";
import { cpus, tmpdir } from "node:os";
import { join } from "node:path";
import { tracked } from "./cleanup.ts";
import { type KabarSource, kabarSource, loadAvg } from "./cluster.ts";
import { LineAgent } from "./line-agent.ts";
import { type BenchPostgres, startPostgres } from "./pg.ts";
import { type Machine, machine } from "./proc.ts";
import { type BenchRedis, startRedis } from "./redis.ts";
import type { Failure, TargetCheck } from "./result.ts";
import { names } from "./scenarios.ts";
import { makeUsers, pinning, type ServerProc, startKabar } from "./servers.ts";
import {
  ADMIN,
  failRecorder,
  latestOf,
  PASSWORD,
  profileMain,
  progressLog,
  runMain,
  shown,
  tidyTemp,
  tunedEnv,
  writeResults,
} from "./setup.ts";
import { endpoints, STEADY } from "./soak.ts";
import { round } from "./stats.ts";
import type {
  SteadyCollectResult,
  SteadyOpenResult,
  SteadyRecoveryResult,
} from "./steady-client.ts";
import { runStorm, type StormResult } from "./storm.ts";

const SERVER_CORE = 1;
const CLIENT_CORE = 0;

export interface FaultsProfile {
  name: "full" | "tiny";
  rooms: number;
  members: number;
  /** Senders per room: members 0 and 1, one on each node. */
  senders: number;
  deliveriesPerSec: number;
  users: number;
  /** Load before each fault, how long the fault lasts, load after recovery. */
  warmupMs: number;
  downMs: number;
  afterMs: number;
  /** Give up waiting for recovery after this long. */
  recoverMs: number;
  storm: "full" | "tiny";
  hosts: number;
  sources: number;
}

export const FAULTS_PROFILES: Record<FaultsProfile["name"], FaultsProfile> = {
  full: {
    name: "full",
    rooms: 10,
    members: 40,
    senders: 2,
    deliveriesPerSec: 4000,
    users: 20,
    warmupMs: 5000,
    downMs: 3000,
    afterMs: 5000,
    recoverMs: 30_000,
    storm: "full",
    hosts: 8,
    sources: 8,
  },
  tiny: {
    name: "tiny",
    rooms: 2,
    members: 10,
    senders: 2,
    deliveriesPerSec: 200,
    users: 4,
    warmupMs: 1000,
    downMs: 1000,
    afterMs: 1000,
    recoverMs: 15_000,
    storm: "tiny",
    hosts: 2,
    sources: 2,
  },
};

export interface FaultRun {
  fault: "redis" | "postgres";
  open?: SteadyOpenResult;
  /** From the restart: until every member got a message sent after it (Redis) / a login worked (PostgreSQL). */
  recoverMs: number | null;
  recovery?: SteadyRecoveryResult;
  /** PostgreSQL: logins tried while it was down, and their answers by status. */
  loginsDown?: Record<string, number>;
  /** PostgreSQL: per node, from the start until its first successful login. */
  loginBackMs?: number[];
  collect?: SteadyCollectResult;
}

export interface FaultsResult {
  version: 1;
  kind: "faults";
  kabar: KabarSource;
  profile: FaultsProfile["name"];
  startedAt: string;
  durationSec: number;
  machine: Machine;
  loadAvg: { start: number[]; end: number[] };
  pinned: boolean;
  settings: FaultsProfile;
  env: Record<string, string>;
  runs: FaultRun[];
  storm?: Pick<StormResult, "profile" | "settings" | "open" | "collect" | "failures" | "targets">;
  failures: Failure[];
  targets: TargetCheck[];
}

const wall = () => performance.timeOrigin + performance.now();

async function loginStatus(port: number): Promise<number> {
  try {
    const res = await fetch(`http://127.0.0.1:${port}/api/v1/login/access-token`, {
      method: "POST",
      body: new URLSearchParams({ username: ADMIN.email, password: ADMIN.password }),
      signal: AbortSignal.timeout(3000),
    });
    await res.arrayBuffer();
    return res.status;
  } catch {
    return 0;
  }
}

export function checkFaultsTargets(r: FaultsResult): TargetCheck[] {
  const fail = r.failures.map((f) => `${f.phase} threw: ${f.error.slice(0, 100)}`);
  const out: TargetCheck[] = [];
  for (const fault of ["redis", "postgres"] as const) {
    const run = r.runs.find((x) => x.fault === fault);
    const c = run?.collect;
    const what = fault === "redis" ? "Redis killed and restarted" : "PostgreSQL restarted";
    const refused = c ? Object.values(c.refused).reduce((a, b) => a + b, 0) : 0;
    out.push({
      name: `${what} under load: lost / duplicates for sockets that stayed connected`,
      target: "0 / 0",
      measured: c
        ? `${c.lost} / ${c.duplicates} (${c.sockets - c.closed} of ${c.sockets} stayed connected; ${c.sent} sent, ${refused} refused ${JSON.stringify(c.refused)}, ${c.unanswered} unanswered; epochs per room ${c.maxEpochs})`
        : [...fail, "MISSING"].join("; "),
      met: c !== undefined && c.lost === 0 && c.duplicates === 0 && c.sent > 0,
    });
    out.push({
      name: `${what}: time to recover`,
      target: "measured",
      measured:
        run?.recoverMs !== null && run?.recoverMs !== undefined
          ? `${run.recoverMs} ms after the restart (down ${r.settings.downMs} ms)`
          : [...fail, "did not recover"].join("; "),
      met: run?.recoverMs === null || run?.recoverMs === undefined ? false : null,
    });
  }
  const s = r.storm?.collect;
  out.push({
    name: "node SIGKILLed under load (reconnect storm): holes / duplicates over every socket",
    target: "0 / 0",
    measured: s
      ? `${s.holes} / ${s.duplicates}; ${s.recovered} of ${s.closed} reconnected with "recovered": true; all caught up ${s.allCaughtUpMs ?? "–"} ms after the kill`
      : [...fail, ...(r.storm?.failures ?? []).map((f) => f.error), "MISSING"].join("; "),
    met:
      s !== undefined &&
      s.holes === 0 &&
      s.duplicates === 0 &&
      s.gaveUp === 0 &&
      s.allCaughtUpMs !== null,
  });
  return out;
}

export function faultsMarkdown(r: FaultsResult): string {
  const p = r.settings;
  const lines = [
    `# Faults (${r.profile}) — ${r.startedAt}, commit ${r.kabar.commit ?? "?"}`,
    "",
    `2 nodes + Redis + PostgreSQL (all of the bench's own); ${p.rooms * p.members} steady sockets (${p.rooms} rooms × ${p.members}, alternating nodes), ${p.deliveriesPerSec} deliveries/s; each fault lasts ${p.downMs} ms. Node kill: bench/storm.ts (${p.storm}). Run took ${r.durationSec} s.`,
    "",
    "| target | wanted | measured | met |",
    "| --- | --- | --- | --- |",
    ...r.targets.map(
      (t) =>
        `| ${t.name} | ${t.target} | ${t.measured} | ${t.met === null ? "–" : t.met ? "yes" : "**no**"} |`,
    ),
  ];
  const pg = r.runs.find((x) => x.fault === "postgres");
  if (pg?.loginsDown)
    lines.push(
      "",
      `Logins while PostgreSQL was down: ${JSON.stringify(pg.loginsDown)}; back per node after ${pg.loginBackMs?.join(", ")} ms.`,
    );
  if (r.failures.length)
    lines.push("", ...r.failures.map((f) => `- FAILED ${f.phase}: ${f.error}`));
  return `${lines.join("\n")}\n`;
}

export async function runFaults(opts: {
  profile: FaultsProfile["name"];
  outDir: string;
  writeLatest: boolean;
  progress: boolean;
}): Promise<{ result: FaultsResult; files: string[] }> {
  const p = FAULTS_PROFILES[opts.profile];
  const started = new Date();
  const load0 = loadAvg();
  const t0 = performance.now();
  const log = progressLog("faults", opts.progress, t0);
  const pinned = pinning && cpus().length >= 2;
  const core = (c: number) => (pinned ? c : -1);
  const tmp = mkdtempSync(join(tmpdir(), "kabar-bench-faults-"));
  const kabarEnv: Record<string, string> = {
    ...tunedEnv(join(tmp, "data")),
    ROOM_HISTORY_SIZE: "100",
    CONNECT_RATE_PER_IP: "0",
  };
  const failures: Failure[] = [];
  const fail = failRecorder(failures, log);
  const runs: FaultRun[] = [];
  const stops: (() => Promise<void>)[] = [];
  let redis: BenchRedis | null = null;
  let pg: BenchPostgres | null = null;
  let nodes: ServerProc[] = [];
  try {
    pg = await startPostgres();
    const thePg = pg;
    stops.push(tracked(() => thePg.stop()));
    redis = await startRedis(core(SERVER_CORE));
    const redisPort = redis.port;
    stops.push(tracked(() => (redis as BenchRedis).stop()));
    Object.assign(kabarEnv, { DATABASE_URL: pg.url, REDIS_URL: redis.url });
    log(`PostgreSQL on ${pg.port}, Redis on ${redis.port}; temp ${tmp}`);
    let logs = 0;
    for (const name of ["nodeA", "nodeB"]) {
      const s = await startKabar(kabarEnv, {
        core: core(SERVER_CORE),
        logFile: join(tmp, `${name}-${++logs}.log`),
        gcDir: tmp,
      });
      stops.push(tracked(() => s.stop()));
      nodes.push(s);
    }
    const ports = nodes.map((n) => n.port);
    const emails = Array.from({ length: p.users }, (_, k) => `faults${k}@bench.example`);
    const tokens = await makeUsers(ports[0] as number, ADMIN, emails, PASSWORD);
    const tokensFile = join(tmp, "tokens.json");
    writeFileSync(tokensFile, JSON.stringify({ tokens }));
    const ends = endpoints(p, ports);

    /** Steady members for one fault: open, send, `fault()`, drain and collect. */
    const under = async (
      fault: FaultRun["fault"],
      inject: (agent: LineAgent, run: FaultRun) => Promise<void>,
    ) => {
      const run: FaultRun = { fault, recoverMs: null };
      runs.push(run);
      const agent = LineAgent.start(`faults-${fault}`, STEADY, {
        core: core(CLIENT_CORE),
        progress: opts.progress,
      });
      const stopAgent = tracked(() => agent.stop());
      try {
        const rooms = names(`faults${fault}`, p.rooms);
        run.open = await agent.call<SteadyOpenResult>(
          {
            op: "open",
            ...ends,
            file: tokensFile,
            tokenOffset: 0,
            rooms,
            members: p.members,
            senders: p.senders,
            create: rooms,
            concurrency: 32,
            timeoutMs: 15_000,
          },
          120_000,
        );
        if (run.open.failed > 0)
          throw new Error(`${run.open.failed} failed: ${run.open.errors[0] ?? "?"}`);
        const total = p.warmupMs + p.downMs + p.recoverMs + p.afterMs + 10_000;
        await agent.call(
          { op: "send", msgPerSec: p.deliveriesPerSec / p.members, maxMs: total },
          10_000,
        );
        await Bun.sleep(p.warmupMs);
        await inject(agent, run);
        await Bun.sleep(p.afterMs);
        run.collect = await agent.call<SteadyCollectResult>(
          { op: "collect", drainMs: 10_000 },
          30_000,
        );
        const c = run.collect;
        log(
          `${fault}: recovered in ${run.recoverMs} ms; lost ${c.lost}, duplicates ${c.duplicates}, closed ${c.closed}, refused ${JSON.stringify(c.refused)}, unanswered ${c.unanswered}`,
        );
        if (c.lost > 0) log(`  losses: ${JSON.stringify(c.losses.slice(0, 10))}`);
      } catch (e) {
        fail(fault, e);
      } finally {
        await stopAgent();
      }
    };

    await under("redis", async (agent, run) => {
      const killed = redis as BenchRedis;
      process.kill(killed.pid, "SIGKILL");
      log("redis-server SIGKILLed");
      await killed.stop(); // reaped, its folder removed
      await Bun.sleep(p.downMs);
      const back = wall();
      const r0 = performance.now();
      redis = await startRedis(core(SERVER_CORE), redisPort);
      log("redis-server started again (empty)");
      await agent.call({ op: "mark", at: back }, 5000);
      const deadline = r0 + p.recoverMs;
      while (performance.now() < deadline) {
        run.recovery = await agent.call<SteadyRecoveryResult>({ op: "recovery" }, 5000);
        if (run.recovery.live > 0 && run.recovery.reached === run.recovery.live) break;
        await Bun.sleep(100);
      }
      if (run.recovery && run.recovery.reached === run.recovery.live)
        run.recoverMs = run.recovery.maxMs;
    });

    await under("postgres", async (_agent, run) => {
      await thePg.kill();
      log("PostgreSQL stopped (immediate)");
      const statuses: Record<string, number> = {};
      const downUntil = performance.now() + p.downMs;
      while (performance.now() < downUntil) {
        for (const port of ports) {
          const s = String(await loginStatus(port));
          statuses[s] = (statuses[s] ?? 0) + 1;
        }
        await Bun.sleep(200);
      }
      run.loginsDown = statuses;
      const r0 = performance.now();
      await thePg.start();
      log("PostgreSQL started again");
      const backMs: number[] = [];
      for (const port of ports) {
        while (performance.now() - r0 < p.recoverMs && (await loginStatus(port)) !== 200)
          await Bun.sleep(50);
        backMs.push(round(performance.now() - r0, 1));
      }
      run.loginBackMs = backMs;
      if (backMs.every((ms) => ms < p.recoverMs)) run.recoverMs = Math.max(...backMs);
    });
  } catch (e) {
    fail("faults", e);
  } finally {
    for (const s of stops.splice(0).reverse()) await s();
    nodes = [];
  }
  let storm: FaultsResult["storm"];
  try {
    log(`node SIGKILL: the reconnect storm (${p.storm})`);
    const { result: s } = await runStorm({
      profile: p.storm,
      outDir: join(tmp, "storm"),
      writeLatest: false,
      progress: opts.progress,
      env: { CONNECT_RATE_PER_IP: "0" },
    });
    storm = {
      profile: s.profile,
      settings: s.settings,
      ...(s.open ? { open: s.open } : {}),
      ...(s.collect ? { collect: s.collect } : {}),
      failures: s.failures,
      targets: s.targets,
    };
  } catch (e) {
    fail("storm", e);
  }
  const result: FaultsResult = {
    version: 1,
    kind: "faults",
    kabar: kabarSource(),
    profile: p.name,
    startedAt: started.toISOString(),
    durationSec: round((performance.now() - t0) / 1000, 1),
    machine: machine(),
    loadAvg: { start: load0, end: loadAvg() },
    pinned,
    settings: p,
    env: shown(
      {
        ...kabarEnv,
        DATABASE_URL: "postgres://postgres@127.0.0.1:<free port>/postgres",
        REDIS_URL: "redis://127.0.0.1:<free port>",
      },
      tmp,
    ),
    runs,
    ...(storm ? { storm } : {}),
    failures,
    targets: [],
  };
  result.targets = checkFaultsTargets(result);
  const files = writeResults(
    opts.outDir,
    started,
    `faults-${p.name}`,
    result,
    opts.writeLatest
      ? { name: latestOf("faults", p.name), files: () => [["md", faultsMarkdown(result)]] }
      : null,
  );
  tidyTemp(tmp, failures, log);
  return { result, files };
}

if (import.meta.main)
  runMain("bench:faults", () =>
    profileMain({
      script: "bench/faults.ts",
      tag: "faults",
      clientCore: CLIENT_CORE,
      quietNote: false,
      run: (profile) =>
        runFaults({
          profile,
          outDir: join(import.meta.dir, "results"),
          writeLatest: true,
          progress: true,
        }),
      report: (result) => faultsMarkdown(result),
    }),
  );
