// The benchmark harness: `bun run bench` (full, a few minutes) or `bun run bench:quick` (~1 min).
// Starts Kabar (`bun src/main.ts`, tuned and on its default settings) and the bare-Bun baseline
// pinned to one core, load clients in separate processes pinned to the other, runs every
// scenario against each in the same run, in rotation with repeats (bench/paired.ts), and writes
// bench/results/<timestamp>.json plus latest.json, latest.md and latest.svg (full runs; other
// profiles write latest-<profile>.*). A phase that throws is recorded and the run goes on; its
// targets are then missed, never passed (bench/targets.ts).
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { cpus, tmpdir } from "node:os";
import { join } from "node:path";
import { svg } from "./chart.ts";
import {
  churnPaired,
  connectionsPaired,
  defaultsFanoutLoad,
  fanoutPaired,
  noisyPaired,
  sharedFanoutLoad,
} from "./paired.ts";
import { machine, machineCpu } from "./proc.ts";
import { PROFILES, type Profile } from "./profiles.ts";
import { markdown } from "./report.ts";
import type { BenchResult, Failure, QuietWait, ServerSettings } from "./result.ts";
import { perUserLoad, type Setup, sharedLoad } from "./scenarios.ts";
import { makeUsers, pinning, type ServerProc, startBaseline, startKabar } from "./servers.ts";
import { round } from "./stats.ts";
import { checkTargets } from "./targets.ts";
import { insertUsers, signLike } from "./users.ts";

export interface BenchOptions {
  profile: Profile["name"];
  /** Where <timestamp>.json (and the latest files when `writeLatest`) go. */
  outDir: string;
  /**
   * Also write latest.json, latest.md and latest.svg (the full profile; the README cites these)
   * or latest-<profile>.* (other profiles, so a quick run never replaces the cited full run).
   */
  writeLatest: boolean;
  /** Progress lines on stderr (the harness's and the clients'). */
  progress: boolean;
}

export interface BenchOutput {
  result: BenchResult;
  files: string[];
}

const SECRET = "kabar-bench-secret-key-0123456789abcdefghijklmnop";
const ADMIN = { email: "admin@example.com", password: "bench-admin-password" };
const PASSWORD = "bench-user-password";
const SERVER_CORE = 1;
const CLIENT_CORE = 0;
const BIG = "1000000000";
/** Other processes using less than this many cores count as a quiet machine. */
export const QUIET_CORES = 0.15;

/** Samples machine-wide CPU in 250 ms steps until it is quiet or `maxMs` passed. */
export async function waitForQuiet(phase: string, maxMs: number): Promise<QuietWait> {
  const start = performance.now();
  let other = 0;
  for (let i = 0; i < 1000; i++) {
    const a = machineCpu().tasks;
    await Bun.sleep(250);
    other = (machineCpu().tasks - a) / 0.25;
    if (other < QUIET_CORES || performance.now() - start >= maxMs) break;
  }
  const waitedMs = Math.round(performance.now() - start);
  return { phase, waitedMs, otherCores: round(other, 2), quiet: other < QUIET_CORES };
}

/** An environment as reported: secrets masked, the temp folder named as such. */
function shown(env: Record<string, string>, tmp: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(env))
    out[k] = /SECRET|PASSWORD/.test(k) ? "(set)" : v.replaceAll(tmp, "<tmp>");
  return out;
}

/** The base name of the latest files of `profile`. */
export const latestName = (profile: Profile["name"]) =>
  profile === "full" ? "latest" : `latest-${profile}`;

export async function runBench(opts: BenchOptions): Promise<BenchOutput> {
  const profile = PROFILES[opts.profile];
  const started = new Date();
  const t0 = performance.now();
  const log = (msg: string) => {
    if (opts.progress)
      process.stderr.write(`[bench ${((performance.now() - t0) / 1000).toFixed(1)}s] ${msg}\n`);
  };
  const pinned = pinning && cpus().length >= 2;
  const tmp = mkdtempSync(join(tmpdir(), "kabar-bench-"));
  const dataDir = join(tmp, "data");
  // What every Kabar needs to run here, none of it a tuning: the key the tokens are signed
  // with, where the users are, the superuser that makes them.
  const deployment = {
    ENVIRONMENT: "local",
    SECRET_KEY: SECRET,
    DATA_DIR: dataDir,
    FIRST_SUPERUSER: ADMIN.email,
    FIRST_SUPERUSER_PASSWORD: ADMIN.password,
  };
  // Tuned for measurement: no log lines, no bot, no limit in the way.
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
  const limits = {
    RATE_LIMIT_CAPACITY: String(profile.noisy.capacity),
    RATE_LIMIT_REFILL_PER_SECOND: String(profile.noisy.refillPerSec),
  };
  const noisyEnv = { ...kabarEnv, ...limits };
  const core = (c: number) => (pinned ? c : -1);
  let logs = 0;
  const serverOpts = (name: string) => ({
    core: core(SERVER_CORE),
    logFile: join(tmp, `${name}-${++logs}.log`),
    gcDir: tmp,
  });
  const servers: ServerSettings[] = [
    {
      name: "kabar",
      program: "bun src/main.ts",
      env: shown(kabarEnv, tmp),
      rows: "connections (both shapes), fan-out, churn",
    },
    {
      name: "kabarDefaults",
      program: "bun src/main.ts",
      env: shown(deployment, tmp),
      rows: "default settings: connections (one socket per user), fan-out (one socket per user, bot answering)",
    },
    {
      name: "kabarNoisy",
      program: "bun src/main.ts",
      env: shown(noisyEnv, tmp),
      rows: "noisy neighbour",
    },
    {
      name: "baseline",
      program: "bun bench/baseline.ts",
      env: shown({ SECRET_KEY: SECRET }, tmp),
      rows: "connections, fan-out (both loads), churn",
    },
    {
      name: "baselineNoisy",
      program: "bun bench/baseline.ts",
      env: shown({ SECRET_KEY: SECRET, ...limits }, tmp),
      rows: "noisy neighbour",
    },
  ];
  const running: ServerProc[] = [];
  const background: QuietWait[] = [];
  const failures: Failure[] = [];
  const fail = (phase: string, e: unknown) => {
    const error = (e instanceof Error ? e.message : String(e)).slice(0, 300);
    failures.push({ phase, error });
    log(`  FAILED ${phase}: ${error}`);
  };
  const quiet = async (phase: string) => {
    if (profile.quietWaitMs <= 0) return;
    const w = await waitForQuiet(phase, profile.quietWaitMs);
    background.push(w);
    if (!w.quiet) log(`  machine busy before ${phase}: other processes use ${w.otherCores} cores`);
  };
  const start = async (p: Promise<ServerProc>) => {
    const srv = await p;
    running.push(srv);
    return srv;
  };
  const stopAll = async () => {
    await Promise.all(running.splice(0).map((s) => s.stop()));
  };
  /** Runs one phase; if it throws, it is recorded and its figures are missing. */
  const phase = async <T>(name: string, fn: () => Promise<T>): Promise<T | undefined> => {
    try {
      return await fn();
    } catch (e) {
      fail(name, e);
      return undefined;
    } finally {
      await stopAll();
    }
  };
  try {
    log(`profile ${profile.name}; ${pinned ? "pinned" : "not pinned"}; temp ${tmp}`);
    const startK = () => startKabar(kabarEnv, serverOpts("kabar"));
    const startD = () => startKabar(deployment, serverOpts("kabar-defaults"));
    const startB = () => startBaseline({ SECRET_KEY: SECRET }, serverOpts("baseline"));
    // Users live in Kabar's DATA_DIR: every later Kabar (same DATA_DIR and SECRET_KEY) accepts
    // these tokens, and the baseline checks the same signature. The few shared users go through
    // the REST API; the one-per-user ones straight into the SQLite file (bench/users.ts).
    const admin = await start(startK());
    const emails = [
      ...Array.from({ length: profile.users }, (_, k) => `bench${k}@example.com`),
      "flooder@example.com",
    ];
    const tokens = await makeUsers(admin.port, ADMIN, emails, PASSWORD);
    await stopAll();
    const c = profile.connections;
    const bulkEmails = Array.from({ length: c.n + c.warmup }, (_, k) => `u${k}@bench.example`);
    const ids = await insertUsers(join(dataDir, "kabar.db"), bulkEmails, PASSWORD);
    const model = tokens[0] ?? "";
    const bulk = ids.map((id) => signLike(model, id, SECRET));
    log(`${emails.length} users made through the API, ${ids.length} in the store`);
    const setup: Setup = {
      profile,
      hosts: Array.from({ length: profile.hosts }, (_, k) => `127.0.0.${k + 1}`),
      tokens: tokens.slice(0, profile.users),
      perUser: bulk.slice(0, c.n),
      warmUsers: bulk.slice(c.n),
      flooderToken: tokens[profile.users] ?? "",
      clientCore: core(CLIENT_CORE),
      progress: opts.progress,
      log,
      quiet,
      fail,
    };
    log("connections: four server kinds in rotation, a fresh server per repeat");
    const conns = await connectionsPaired(setup, [
      { key: "kabar", start: startK, load: perUserLoad(setup) },
      { key: "kabarShared", start: startK, load: sharedLoad(setup) },
      { key: "kabarDefaults", start: startD, load: perUserLoad(setup) },
      { key: "baseline", start: startB, load: perUserLoad(setup) },
    ]);
    log("fan-out: three server kinds in rotation, a fresh server and client per repeat");
    const fan = await fanoutPaired(setup, [
      { key: "kabar", start: startK, loads: [sharedFanoutLoad(setup)] },
      {
        key: "baseline",
        start: startB,
        loads: [sharedFanoutLoad(setup), defaultsFanoutLoad(setup)],
      },
      { key: "kabarDefaults", start: startD, loads: [defaultsFanoutLoad(setup)] },
    ]);
    log("churn: kabar and baseline in alternation");
    const churn = await phase("churn", async () =>
      churnPaired(setup, { kabar: await start(startK()), baseline: await start(startB()) }),
    );
    log("noisy neighbour: kabar and baseline in alternation");
    const noisy = await phase("noisy neighbour", async () =>
      noisyPaired(setup, {
        kabar: await start(startKabar(noisyEnv, serverOpts("kabar-noisy"))),
        baseline: await start(startBaseline({ SECRET_KEY: SECRET, ...limits }, serverOpts("b"))),
      }),
    );
    const partial = {
      kabar: {
        connections: conns.kabar,
        connectionsShared: conns.kabarShared,
        fanout: fan.kabar,
        churn: churn?.kabar,
        noisy: noisy?.kabar,
      },
      kabarDefaults: { connections: conns.kabarDefaults, fanout: fan.kabarDefaults },
      baseline: {
        connections: conns.baseline,
        fanout: fan.baseline,
        churn: churn?.baseline,
        noisy: noisy?.baseline,
      },
      settings: profile,
      failures,
    };
    const result: BenchResult = {
      version: 2,
      profile: profile.name,
      startedAt: started.toISOString(),
      durationSec: round((performance.now() - t0) / 1000, 1),
      machine: machine(),
      pinned,
      serverCore: SERVER_CORE,
      clientCore: CLIENT_CORE,
      ...partial,
      servers,
      targets: checkTargets(partial),
      background,
    };
    mkdirSync(opts.outDir, { recursive: true });
    const stamp = started.toISOString().replace(/[:.]/g, "-");
    const json = `${JSON.stringify(result, null, 2)}\n`;
    const files = [join(opts.outDir, `${stamp}-${profile.name}.json`)];
    writeFileSync(files[0] as string, json);
    if (opts.writeLatest) {
      const base = join(opts.outDir, latestName(profile.name));
      files.push(`${base}.json`, `${base}.md`, `${base}.svg`);
      writeFileSync(`${base}.json`, json);
      writeFileSync(`${base}.md`, markdown(result, `${latestName(profile.name)}.svg`));
      writeFileSync(`${base}.svg`, svg(result));
    }
    if (failures.length === 0) rmSync(tmp, { recursive: true, force: true });
    else log(`${failures.length} phase(s) failed; server logs kept in ${tmp}`);
    return { result, files };
  } catch (e) {
    log(`failed; server log kept in ${tmp}`);
    throw e;
  } finally {
    await stopAll();
  }
}

async function main(): Promise<number> {
  const arg = process.argv[2] ?? "full";
  if (arg !== "full" && arg !== "quick" && arg !== "tiny") {
    console.error("usage: bun bench/run.ts [full|quick|tiny]");
    return 2;
  }
  // The harness itself only orchestrates; keep it off the server's core too.
  if (pinning && cpus().length >= 2)
    Bun.spawnSync(["taskset", "-apc", String(CLIENT_CORE), String(process.pid)], {
      stdout: "ignore",
    });
  const { result, files } = await runBench({
    profile: arg,
    outDir: join(import.meta.dir, "results"),
    writeLatest: arg !== "tiny",
    progress: true,
  });
  console.log(markdown(result, `${latestName(result.profile)}.svg`));
  console.log(`wrote ${files.join(", ")}`);
  const missed = result.targets.filter((t) => t.met === false).length;
  if (missed > 0) console.log(`${missed} target(s) not met`);
  return 0;
}

if (import.meta.main) {
  main().then(
    (code) => process.exit(code),
    (e) => {
      console.error(`bench: ${e instanceof Error ? e.message : String(e)}`);
      process.exit(1);
    },
  );
}
