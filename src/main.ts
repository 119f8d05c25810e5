// Entry point: `kabar [--help] [--version] [--workers N|auto]`, and `kabar user ...` (src/cli.ts).
// Settings come from the environment (see --help). With WORKERS set this process is the supervisor of N workers (src/workers.ts); a
// worker (KABAR_WORKER set) is a plain node that shares the port with the others.
import { createKabar } from "./app.ts";
import { USAGE, userCommand } from "./cli.ts";
import { ConfigError, ensureLocalSecret, helpText, isWeakSecret, loadConfig } from "./config.ts";
import { preallocateFds } from "./fd-table.ts";
import { createLogger, errorText } from "./log.ts";
import { VERSION } from "./version.ts";
import { READY_LINE, supervise, WORKER_ENV, watchParent } from "./workers.ts";

/** `--workers N` / `--workers=N` set WORKERS; any other argument is refused (exit 2). */
function parseArgs(args: string[]): number | undefined {
  for (let i = 0; i < args.length; i++) {
    const arg = args[i] as string;
    if (arg === "--workers" || arg.startsWith("--workers=")) {
      const value = arg === "--workers" ? args[++i] : arg.slice("--workers=".length);
      if (value === undefined || value === "") {
        console.error("kabar: --workers needs a value: a number or auto (try --help)");
        return 2;
      }
      process.env.WORKERS = value;
      continue;
    }
    console.error(`kabar: unknown argument ${arg} (try --help)`);
    return 2;
  }
  return undefined;
}

async function main(): Promise<number> {
  const args = process.argv.slice(2);
  if (args.includes("--help") || args.includes("-h")) {
    console.log(helpText(USAGE));
    return 0;
  }
  if (args[0] === "--version" || args[0] === "-V") {
    console.log(`kabar ${VERSION}`);
    return 0;
  }
  if (args[0] === "user") return userCommand(args.slice(1));
  const refused = parseArgs(args);
  if (refused !== undefined) return refused;
  let config: ReturnType<typeof loadConfig>;
  try {
    config = loadConfig();
  } catch (e) {
    if (e instanceof ConfigError) {
      console.error(`kabar: invalid setting ${e.message}`);
      return 1;
    }
    throw e;
  }
  const log = createLogger(config.logLevel);
  const worker = process.env[WORKER_ENV];
  if (config.workers !== undefined && worker === undefined) {
    // Generated once here, so that every worker reads the same key from DATA_DIR.
    if (ensureLocalSecret(config) === "generated")
      log.warn("SECRET_KEY not set: generated one for local use", { dir: config.dataDir });
    return supervise(config, log);
  }
  const secret = ensureLocalSecret(config);
  if (secret === "env" && isWeakSecret(config.secretKey))
    log.warn("SECRET_KEY is weak (changethis or under 32 characters): acceptable in local only");
  if (secret === "generated")
    log.warn("SECRET_KEY not set: generated one for local use", { dir: config.dataDir });
  if (config.environment === "local" && config.firstSuperuserPassword === "changethis")
    log.warn("FIRST_SUPERUSER_PASSWORD not set: using the local default", {
      email: config.firstSuperuser,
    });
  // Before anything else opens files (the user database, Redis): see src/fd-table.ts.
  const fds = preallocateFds(config.fdPreallocate);
  if (fds !== undefined)
    log.debug("open-files table grown", { descriptors: fds.top + 1, ms: fds.ms });
  const kabar = await createKabar(config, { log });
  try {
    kabar.listen({ reusePort: worker !== undefined });
    if (worker !== undefined) process.stdout.write(`${READY_LINE}\n`);
  } catch (e) {
    const code = (e as { code?: string }).code;
    const why = code === "EADDRINUSE" ? "address already in use" : errorText(e);
    log.error("cannot listen", { host: config.host, port: config.port, error: why });
    console.error(`kabar: cannot listen on ${config.host}:${config.port}: ${why}`);
    await kabar.stop();
    return 1;
  }
  await new Promise<void>((resolve) => {
    let stopping = false;
    const shutdown = (signal: string) => {
      // Ctrl-C reaches a worker and its supervisor (which sends SIGTERM): stop once.
      if (stopping) return;
      stopping = true;
      log.info("shutting down", { signal });
      kabar.stop().then(resolve, (e) => {
        log.error("shutdown failed", { error: errorText(e) });
        resolve();
      });
    };
    process.on("SIGTERM", () => shutdown("SIGTERM"));
    process.on("SIGINT", () => shutdown("SIGINT"));
    // A worker whose supervisor is gone (SIGKILLed) stops instead of serving on unsupervised.
    if (worker !== undefined) watchParent(() => shutdown("supervisor gone"));
  });
  return 0;
}

main().then(
  (code) => process.exit(code),
  (e) => {
    console.error(`kabar: ${errorText(e)}`);
    process.exit(1);
  },
);
