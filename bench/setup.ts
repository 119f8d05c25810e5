// What every benchmark harness sets up the same way: the deployment settings and tuned
// environment of its Kabar servers, the progress log, the failure record, the bounded wait for a
// quiet machine before a measuring window, and the result files at the end.
import { mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { cpus } from "node:os";
import { join } from "node:path";
import { stopOnSignals, tracked } from "./cleanup.ts";
import { machineCpu } from "./proc.ts";
import type { Failure, QuietWait, TargetCheck } from "./result.ts";
import { makeUsers, pinning, startKabar } from "./servers.ts";
import { round } from "./stats.ts";
import { insertUsers, signLike } from "./users.ts";

export const SECRET = "kabar-bench-secret-key-0123456789abcdefghijklmnop";
export const ADMIN = { email: "admin@example.com", password: "bench-admin-password" };
export const PASSWORD = "bench-user-password";
export const BIG = "1000000000";
/** Other processes using less than this many cores count as a quiet machine. */
export const QUIET_CORES = 0.15;

/**
 * What every Kabar needs to run here, none of it a tuning: the key the tokens are signed with,
 * where the users are, the superuser that makes them; and no connect-rate limit, since every
 * load client here comes from a handful of loopback addresses (real clients come from many).
 */
export const deploymentEnv = (dataDir: string) => ({
  ENVIRONMENT: "local",
  SECRET_KEY: SECRET,
  DATA_DIR: dataDir,
  FIRST_SUPERUSER: ADMIN.email,
  FIRST_SUPERUSER_PASSWORD: ADMIN.password,
  CONNECT_RATE_PER_IP: "0",
});

/** `deploymentEnv` tuned for measurement: no log lines, no bot, no limit in the way. */
export const tunedEnv = (dataDir: string) => ({
  ...deploymentEnv(dataDir),
  LOG_LEVEL: "warn",
  BOT_ENABLED: "false",
  MAX_CONNECTIONS_PER_USER: BIG,
  MAX_ROOMS: BIG,
  MAX_ROOMS_PER_USER: BIG,
  ROOM_EMPTY_TTL_SECONDS: "86400",
  RATE_LIMIT_CAPACITY: BIG,
  RATE_LIMIT_REFILL_PER_SECOND: BIG,
});

/** The 1, 5 and 15 minute load averages. */
export const loadAvg = (): number[] =>
  readFileSync("/proc/loadavg", "utf8").split(" ").slice(0, 3).map(Number);

/** An environment as reported: secrets masked, the temp folder named as such. */
export function shown(env: Record<string, string>, tmp: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(env))
    out[k] = /SECRET|PASSWORD/.test(k) ? "(set)" : v.replaceAll(tmp, "<tmp>");
  return out;
}

/** A progress line writer: `[tag 1.2s] msg` on stderr when `progress` is on. */
export function progressLog(tag: string, progress: boolean, t0: number): (msg: string) => void {
  return (msg) => {
    if (progress)
      process.stderr.write(`[${tag} ${((performance.now() - t0) / 1000).toFixed(1)}s] ${msg}\n`);
  };
}

/** Records a phase that threw (its message cut to 300 characters) and logs it. */
export function failRecorder(
  failures: Failure[],
  log: (msg: string) => void,
): (phase: string, e: unknown) => void {
  return (phase, e) => {
    const error = (e instanceof Error ? e.message : String(e)).slice(0, 300);
    failures.push({ phase, error });
    log(`  FAILED ${phase}: ${error}`);
  };
}

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

/** Waits (at most `maxMs`; not at all if 0) for a quiet machine, recording each wait. */
export function quietWaiter(
  maxMs: number,
  background: QuietWait[],
  log: (msg: string) => void,
): (phase: string) => Promise<void> {
  return async (phase) => {
    if (maxMs <= 0) return;
    const w = await waitForQuiet(phase, maxMs);
    background.push(w);
    if (!w.quiet) log(`  machine busy before ${phase}: other processes use ${w.otherCores} cores`);
  };
}

/** The base name of a benchmark's latest files: `<kind>-latest` (full) or `<kind>-latest-<profile>`. */
export const latestOf = (kind: string, profile: string) =>
  profile === "full" ? `${kind}-latest` : `${kind}-latest-${profile}`;

/**
 * Writes `result` as `<outDir>/<stamp>-<stamped>.json` (stamp: the start time) and, with `latest`,
 * as `<latest.name>.json` next to the files `latest.files` gives (extension and text; it is told
 * the latest SVG's file name). Returns every file written, the stamped one first.
 */
export function writeResults(
  outDir: string,
  started: Date,
  stamped: string,
  result: unknown,
  latest: { name: string; files(svgName: string): [ext: string, text: string][] } | null,
): string[] {
  mkdirSync(outDir, { recursive: true });
  const stamp = started.toISOString().replace(/[:.]/g, "-");
  const json = `${JSON.stringify(result, null, 2)}\n`;
  const files = [join(outDir, `${stamp}-${stamped}.json`)];
  writeFileSync(files[0] as string, json);
  if (latest !== null) {
    const base = join(outDir, latest.name);
    const more = latest.files(`${latest.name}.svg`);
    files.push(`${base}.json`, ...more.map(([ext]) => `${base}.${ext}`));
    writeFileSync(`${base}.json`, json);
    for (const [ext, text] of more) writeFileSync(`${base}.${ext}`, text);
  }
  return files;
}

/** Removes the temp folder after a clean run; keeps it (server logs) if any phase failed. */
/**
 * A comma-separated list in the environment variable `name`, each item one of `allowed`; null
 * when unset or empty (for the benchmarks' "only these" switches).
 */
export function envChoice<T extends string>(name: string, allowed: readonly T[]): T[] | null {
  const v = process.env[name];
  if (v === undefined || v === "") return null;
  const names = v.split(",").map((s) => s.trim());
  for (const n of names)
    if (!(allowed as readonly string[]).includes(n))
      throw new Error(`${name}: unknown ${n} (one of ${allowed.join(", ")})`);
  return names as T[];
}

export function tidyTemp(tmp: string, failures: Failure[], log: (msg: string) => void): void {
  if (failures.length === 0) rmSync(tmp, { recursive: true, force: true });
  else log(`${failures.length} phase(s) failed; server logs kept in ${tmp}`);
}

/**
 * The `main` of a harness run as `bun <script> [full|tiny|…]` (`profiles`, default full and
 * tiny; the first is the default): keeps the harness itself (it only
 * orchestrates) off the server core, stops the servers on a signal, runs the profile, prints its
 * report and the files written, and counts the targets missed.
 */
export async function profileMain<
  R extends { targets: TargetCheck[] },
  P extends string = "full" | "tiny",
>(o: {
  script: string;
  /** The profiles this script knows, the default first. */
  profiles?: readonly P[];
  tag: string;
  clientCore: number;
  /** Say in the load-average line what a quiet machine is (the harness waits for one). */
  quietNote: boolean;
  run(profile: P): Promise<{ result: R; files: string[] }>;
  report(result: R, profile: P): string;
}): Promise<number> {
  const known = (o.profiles ?? ["full", "tiny"]) as readonly string[];
  const arg = process.argv[2] ?? known[0];
  const isKnown = (a: string | undefined): a is P => a !== undefined && known.includes(a);
  if (!isKnown(arg)) {
    console.error(`usage: bun ${o.script} [${known.join("|")}]`);
    return 2;
  }
  if (pinning && cpus().length >= 2)
    Bun.spawnSync(["taskset", "-apc", String(o.clientCore), String(process.pid)], {
      stdout: "ignore",
    });
  stopOnSignals();
  const note = o.quietNote ? `; quiet means other processes < ${QUIET_CORES} cores` : "";
  process.stderr.write(`[${o.tag}] load average ${loadAvg().join(" ")}${note}\n`);
  const { result, files } = await o.run(arg);
  console.log(o.report(result, arg));
  console.log(`wrote ${files.join(", ")}`);
  const missed = result.targets.filter((t) => t.met === false).length;
  if (missed > 0) console.log(`${missed} target(s) not met`);
  return 0;
}

/** Runs `main` as the entry point: exits with its code, or with 1 after `<prefix>: <error>`. */
export function runMain(prefix: string, main: () => Promise<number>): void {
  main().then(
    (code) => process.exit(code),
    (e) => {
      console.error(`${prefix}: ${e instanceof Error ? e.message : String(e)}`);
      process.exit(1);
    },
  );
}

/**
 * One user per socket, written straight into the SQLite file of `env` (bench/users.ts): a first
 * Kabar makes the schema and the superuser, one user made through the REST API gives the model
 * token, then `count` users `<prefix><k>@bench.example` go into the file, and their tokens into
 * `<tmp>/tokens.json` (`{ "tokens": string[] }`, token k for user k). Run before any Kabar that
 * is to use the file starts.
 */
export async function socketUsers(o: {
  env: Record<string, string>;
  dataDir: string;
  tmp: string;
  count: number;
  prefix: string;
  server: { core: number; logFile: string; gcDir: string };
}): Promise<{ tokensFile: string; dbUrl: string }> {
  const admin = await startKabar(o.env, o.server);
  const stopAdmin = tracked(() => admin.stop());
  let model: string;
  try {
    [model = ""] = await makeUsers(admin.port, ADMIN, [`${o.prefix}-model@example.com`], PASSWORD);
  } finally {
    await stopAdmin();
  }
  const emails = Array.from({ length: o.count }, (_, k) => `${o.prefix}${k}@bench.example`);
  const ids = await insertUsers(join(o.dataDir, "kabar.db"), emails, PASSWORD);
  const tokensFile = join(o.tmp, "tokens.json");
  writeFileSync(
    tokensFile,
    JSON.stringify({ tokens: ids.map((id) => signLike(model, id, SECRET)) }),
  );
  return { tokensFile, dbUrl: `sqlite://${join(o.dataDir, "kabar.db")}` };
}
