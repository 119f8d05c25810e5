// The benchmark harness: `bun run bench` (full, a few minutes) or `bun run bench:quick` (< 60 s).
// Starts Kabar (`bun src/main.ts`) and the bare-Bun baseline pinned to one core, load clients in
// separate processes pinned to the other, runs every scenario against both in the same run, in
// alternation with repeats (bench/paired.ts), and writes bench/results/<timestamp>.json, latest.md
// and latest.svg.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { cpus, tmpdir } from "node:os";
import { join } from "node:path";
import { svg } from "./chart.ts";
import { churnPaired, connectionsPaired, fanoutPaired, noisyPaired } from "./paired.ts";
import { machine, machineCpu } from "./proc.ts";
import { PROFILES, type Profile } from "./profiles.ts";
import { markdown } from "./report.ts";
import type { BenchResult, QuietWait, ServerResults } from "./result.ts";
import type { Setup } from "./scenarios.ts";
import { makeUsers, pinning, type ServerProc, startBaseline, startKabar } from "./servers.ts";
import { round } from "./stats.ts";
import { checkTargets } from "./targets.ts";

export interface BenchOptions {
  profile: Profile["name"];
  /** Where <timestamp>.json (and latest.md/svg when `writeLatest`) go. */
  outDir: string;
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
const QUIET_CORES = 0.15;

/** Samples machine-wide CPU in 250 ms steps until it is quiet or `maxMs` passed. */
async function waitForQuiet(phase: string, maxMs: number): Promise<QuietWait> {
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
  const kabarEnv = {
    ENVIRONMENT: "local",
    SECRET_KEY: SECRET,
    DATA_DIR: join(tmp, "data"),
    FIRST_SUPERUSER: ADMIN.email,
    FIRST_SUPERUSER_PASSWORD: ADMIN.password,
    LOG_LEVEL: "warn",
    BOT_ENABLED: "false",
    MAX_CONNECTIONS_PER_USER: BIG,
    MAX_ROOMS: BIG,
    MAX_ROOMS_PER_USER: BIG,
    ROOM_EMPTY_TTL_SECONDS: "86400",
    RATE_LIMIT_CAPACITY: BIG,
    RATE_LIMIT_REFILL_PER_SECOND: BIG,
  };
  const core = (c: number) => (pinned ? c : -1);
  const serverOpts = { core: core(SERVER_CORE), logFile: join(tmp, "kabar.log"), gcDir: tmp };
  const running: ServerProc[] = [];
  const background: QuietWait[] = [];
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
  try {
    log(`profile ${profile.name}; ${pinned ? "pinned" : "not pinned"}; temp ${tmp}`);
    const startK = () => startKabar(kabarEnv, serverOpts);
    const startB = () => startBaseline({ SECRET_KEY: SECRET }, serverOpts);
    // Users live in Kabar's DATA_DIR: every later Kabar (same DATA_DIR and SECRET_KEY) accepts
    // these tokens, and the baseline checks the same signature.
    const admin = await start(startK());
    const emails = [
      ...Array.from({ length: profile.users }, (_, k) => `bench${k}@example.com`),
      "flooder@example.com",
    ];
    const tokens = await makeUsers(admin.port, ADMIN, emails, PASSWORD);
    await stopAll();
    log(`${emails.length} users made`);
    const setup: Setup = {
      profile,
      hosts: Array.from({ length: profile.hosts }, (_, k) => `127.0.0.${k + 1}`),
      tokens: tokens.slice(0, profile.users),
      flooderToken: tokens[profile.users] ?? "",
      clientCore: core(CLIENT_CORE),
      progress: opts.progress,
      log,
      quiet,
    };
    log("connections: kabar and baseline in alternation, a fresh server per repeat");
    const conns = await connectionsPaired(setup, { kabar: startK, baseline: startB });
    log("fan-out: kabar and baseline in alternation, a fresh server and client per repeat");
    const fan = await fanoutPaired(setup, { kabar: startK, baseline: startB });
    const servers = { kabar: await start(startK()), baseline: await start(startB()) };
    log(`kabar pid ${servers.kabar.pid}, baseline pid ${servers.baseline.pid}`);
    log("churn: kabar and baseline in alternation");
    const churn = await churnPaired(setup, servers);
    await stopAll();
    const limits = {
      RATE_LIMIT_CAPACITY: String(profile.noisy.capacity),
      RATE_LIMIT_REFILL_PER_SECOND: String(profile.noisy.refillPerSec),
    };
    const limited = {
      kabar: await start(startKabar({ ...kabarEnv, ...limits }, serverOpts)),
      baseline: await start(startBaseline({ SECRET_KEY: SECRET, ...limits }, serverOpts)),
    };
    log("noisy neighbour: kabar and baseline in alternation");
    const noisy = await noisyPaired(setup, limited);
    await stopAll();
    const pick = (side: "kabar" | "baseline"): ServerResults => ({
      connections: conns[side],
      fanout: fan[side],
      churn: churn[side],
      noisy: noisy[side],
    });
    const partial = { kabar: pick("kabar"), baseline: pick("baseline"), settings: profile };
    const result: BenchResult = {
      version: 1,
      profile: profile.name,
      startedAt: started.toISOString(),
      durationSec: round((performance.now() - t0) / 1000, 1),
      machine: machine(),
      pinned,
      serverCore: SERVER_CORE,
      clientCore: CLIENT_CORE,
      ...partial,
      targets: checkTargets(partial),
      background,
    };
    mkdirSync(opts.outDir, { recursive: true });
    const stamp = started.toISOString().replace(/[:.]/g, "-");
    const files = [join(opts.outDir, `${stamp}-${profile.name}.json`)];
    writeFileSync(files[0] as string, `${JSON.stringify(result, null, 2)}\n`);
    if (opts.writeLatest) {
      files.push(join(opts.outDir, "latest.md"), join(opts.outDir, "latest.svg"));
      writeFileSync(files[1] as string, markdown(result));
      writeFileSync(files[2] as string, svg(result));
    }
    rmSync(tmp, { recursive: true, force: true });
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
  console.log(markdown(result));
  console.log(`wrote ${files.join(", ")}`);
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
