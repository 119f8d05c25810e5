// The benchmark harness: `bun run bench` (full, a few minutes) or `bun run bench:quick` (~1 min).
// Starts Kabar (`bun src/main.ts`, tuned and on its default settings) and the bare-Bun baseline
// pinned to one core, load clients in separate processes pinned to the other, runs every
// scenario against each in the same run, in rotation with repeats (bench/paired.ts), and writes
// bench/results/<timestamp>.json plus latest.json, latest.md and latest.svg (full runs; other
// profiles write latest-<profile>.*). A phase that throws is recorded and the run goes on; its
// targets are then missed, never passed (bench/targets.ts).
import { mkdtempSync } from "node:fs";
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
import { machine } from "./proc.ts";
import { PROFILES, type Profile } from "./profiles.ts";
import { markdown } from "./report.ts";
import type { BenchResult, Failure, QuietWait, ServerSettings } from "./result.ts";
import { perUserLoad, type Setup, sharedLoad } from "./scenarios.ts";
import { makeUsers, pinning, type ServerProc, startBaseline, startKabar } from "./servers.ts";
import {
  ADMIN,
  deploymentEnv,
  failRecorder,
  PASSWORD,
  progressLog,
  QUIET_CORES,
  quietWaiter,
  runMain,
  SECRET,
  shown,
  tidyTemp,
  tunedEnv,
  waitForQuiet,
  writeResults,
} from "./setup.ts";
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

const SERVER_CORE = 1;
const CLIENT_CORE = 0;

export { QUIET_CORES, waitForQuiet };

/** The base name of the latest files of `profile`. */
export const latestName = (profile: Profile["name"]) =>
  profile === "full" ? "latest" : `latest-${profile}`;

export async function runBench(opts: BenchOptions): Promise<BenchOutput> {
  const profile = PROFILES[opts.profile];
  const started = new Date();
  const t0 = performance.now();
  const log = progressLog("bench", opts.progress, t0);
  const pinned = pinning && cpus().length >= 2;
  const tmp = mkdtempSync(join(tmpdir(), "kabar-bench-"));
  const dataDir = join(tmp, "data");
  // What every Kabar needs to run here, none of it a tuning (bench/setup.ts), and that tuned for
  // measurement: no log lines, no bot, no limit in the way.
  const deployment = deploymentEnv(dataDir);
  const kabarEnv = tunedEnv(dataDir);
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
  const fail = failRecorder(failures, log);
  const quiet = quietWaiter(profile.quietWaitMs, background, log);
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
    const files = writeResults(
      opts.outDir,
      started,
      profile.name,
      result,
      opts.writeLatest
        ? {
            name: latestName(profile.name),
            files: (svgName) => [
              ["md", markdown(result, svgName)],
              ["svg", svg(result)],
            ],
          }
        : null,
    );
    tidyTemp(tmp, failures, log);
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

if (import.meta.main) runMain("bench", main);
