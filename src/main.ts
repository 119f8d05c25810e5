// Entry point: `kabar [--help]`. Settings come from the environment (see --help).
import { createKabar } from "./app.ts";
import { ConfigError, ensureLocalSecret, helpText, isWeakSecret, loadConfig } from "./config.ts";
import { createLogger, errorText } from "./log.ts";

async function main(): Promise<number> {
  const args = process.argv.slice(2);
  if (args.includes("--help") || args.includes("-h")) {
    console.log(helpText());
    return 0;
  }
  if (args.length > 0) {
    console.error(`kabar: unknown argument ${args[0]} (try --help)`);
    return 2;
  }
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
  const secret = ensureLocalSecret(config);
  if (secret === "env" && isWeakSecret(config.secretKey))
    log.warn("SECRET_KEY is weak (changethis or under 32 characters): acceptable in local only");
  if (secret === "generated")
    log.warn("SECRET_KEY not set: generated one for local use", { dir: config.dataDir });
  if (config.environment === "local" && config.firstSuperuserPassword === "changethis")
    log.warn("FIRST_SUPERUSER_PASSWORD not set: using the local default", {
      email: config.firstSuperuser,
    });
  const kabar = await createKabar(config, { log });
  try {
    kabar.listen();
  } catch (e) {
    const code = (e as { code?: string }).code;
    const why = code === "EADDRINUSE" ? "address already in use" : errorText(e);
    log.error("cannot listen", { host: config.host, port: config.port, error: why });
    console.error(`kabar: cannot listen on ${config.host}:${config.port}: ${why}`);
    await kabar.stop();
    return 1;
  }
  await new Promise<void>((resolve) => {
    const shutdown = (signal: string) => {
      log.info("shutting down", { signal });
      kabar.stop().then(resolve, (e) => {
        log.error("shutdown failed", { error: errorText(e) });
        resolve();
      });
    };
    process.once("SIGTERM", () => shutdown("SIGTERM"));
    process.once("SIGINT", () => shutdown("SIGINT"));
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
