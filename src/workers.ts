// WORKERS=N: N Kabar nodes on one machine sharing one port (SO_REUSEPORT), supervised by the
// process that was started. The supervisor does not serve: it spawns N copies of itself marked
// with KABAR_WORKER=<index> (plain cluster nodes that listen with reusePort), forwards their log
// lines with a `worker` field, restarts a worker that dies with backoff, gives up when a worker
// keeps failing before it listens, and on SIGTERM/SIGINT drains them all.
import type { Subprocess } from "bun";
import type { Config } from "./config.ts";
import { errorText, type Logger } from "./log.ts";

/** The variable that marks a child as a worker (its value: the worker's index). */
export const WORKER_ENV = "KABAR_WORKER";
/**
 * What a worker prints on stdout once it listens, whatever its LOG_LEVEL: the supervisor takes
 * it (and does not pass it on) to start the other workers and to count a start as good.
 */
export const READY_LINE = '{"kabar_worker":"ready"}';

export const RESTART_INITIAL_MS = 100;
export const RESTART_MAX_MS = 5000;
/** A worker that stayed up this long starts its next restart from RESTART_INITIAL_MS again. */
export const RESTART_RESET_AFTER_MS = 10_000;
/** Exits before listening, in a row, after which the supervisor gives up (exit 1). */
export const MAX_FAILED_STARTS = 5;
/** On SIGTERM/SIGINT, workers still running after this long are SIGKILLed. */
export const DRAIN_TIMEOUT_MS = 8000;

/**
 * The command that runs this program again. From `bun src/main.ts` that is Bun, its own flags
 * and the script; from the compiled binary (`bun build --compile`), whose entry point lives in
 * Bun's embedded file system, it is the binary alone.
 */
export function selfCommand(): string[] {
  const main = Bun.main;
  const compiled = main.startsWith("/$bunfs/") || /^[A-Z]:[\\/]~BUN[\\/]/i.test(main);
  return compiled ? [process.execPath] : [process.execPath, ...process.execArgv, main];
}

/**
 * A worker's log line with its `worker` field; anything that is not a JSON object is passed
 * through as it is.
 */
export function tagLine(line: string, worker: number): string {
  if (!line.startsWith("{")) return line;
  try {
    const entry: unknown = JSON.parse(line);
    if (entry !== null && typeof entry === "object" && !Array.isArray(entry))
      return JSON.stringify({ ...entry, worker });
  } catch {
    // not JSON after all
  }
  return line;
}

/** Calls `onGone` once this process's parent has exited (polled: Linux has no event for it). */
export function watchParent(onGone: () => void, everyMs = 1000): void {
  const parent = process.ppid;
  const timer = setInterval(() => {
    if (process.ppid === parent) return;
    clearInterval(timer);
    onGone();
  }, everyMs);
  timer.unref();
}

/**
 * Checks that host:port can be bound by one process alone (a taken port is an error, never a
 * silent second set of workers) and resolves port 0 to a free port for every worker.
 */
async function reservePort(host: string, port: number): Promise<number> {
  const probe = Bun.serve({
    hostname: host,
    port,
    reusePort: false,
    fetch: () => new Response(null, { status: 503 }),
  });
  const bound = probe.port ?? port;
  await probe.stop(true);
  return bound;
}

type Child = Subprocess<"ignore", "pipe", "pipe">;

interface Slot {
  index: number;
  proc: Child | null;
  startedAt: number;
  /** The current process logged "listening". */
  listening: boolean;
  failedStarts: number;
  /** Delay before the next restart. */
  delayMs: number;
  restarts: number;
  timer: ReturnType<typeof setTimeout> | null;
  /** The last stderr line forwarded: the same line from the next failed start is not repeated. */
  lastError: string;
  /** Output pumps of the current process (done when its pipes close). */
  pumps: Promise<void>[];
}

export interface SuperviseOptions {
  /** The command of a worker (default: this program again, `selfCommand()`). */
  command?: string[];
  /** Workers' environment (default process.env); WORKER_ENV and PORT are set on top. */
  env?: Record<string, string | undefined>;
}

/** Runs the supervisor until it is told to stop (resolves 0) or gives up (resolves 1). */
export async function supervise(
  config: Config,
  log: Logger,
  options: SuperviseOptions = {},
): Promise<number> {
  const count = config.workers ?? 1;
  const command = options.command ?? selfCommand();
  const baseEnv = options.env ?? process.env;
  let port: number;
  try {
    port = await reservePort(config.host, config.port);
  } catch (e) {
    const code = (e as { code?: string }).code;
    const why = code === "EADDRINUSE" ? "address already in use" : errorText(e);
    log.error("cannot listen", { host: config.host, port: config.port, error: why });
    console.error(`kabar: cannot listen on ${config.host}:${config.port}: ${why}`);
    return 1;
  }
  log.info("starting workers", { workers: count, host: config.host, port, pid: process.pid });

  const slots: Slot[] = Array.from({ length: count }, (_, index) => ({
    index,
    proc: null,
    startedAt: 0,
    listening: false,
    failedStarts: 0,
    delayMs: RESTART_INITIAL_MS,
    restarts: 0,
    timer: null,
    lastError: "",
    pumps: [],
  }));
  let stopping = false;
  /** Worker 0 starts alone (it migrates the database, creates the superuser); then the rest. */
  let othersStarted = count === 1;
  let finish: (code: number) => void = () => {};
  const done = new Promise<number>((resolve) => {
    finish = resolve;
  });

  const pump = async (
    stream: ReadableStream<Uint8Array>,
    onLine: (line: string) => void,
  ): Promise<void> => {
    const decoder = new TextDecoder();
    let rest = "";
    try {
      for await (const chunk of stream) {
        rest += decoder.decode(chunk, { stream: true });
        let nl = rest.indexOf("\n");
        while (nl >= 0) {
          onLine(rest.slice(0, nl));
          rest = rest.slice(nl + 1);
          nl = rest.indexOf("\n");
        }
      }
    } catch {
      // the pipe broke: the worker is gone
    }
    rest += decoder.decode();
    if (rest !== "") onLine(rest);
  };

  const onStdout = (slot: Slot, line: string) => {
    if (line === READY_LINE) {
      slot.listening = true;
      slot.failedStarts = 0;
      slot.lastError = "";
      if (!othersStarted && !stopping) {
        othersStarted = true;
        for (const other of slots) if (other !== slot && other.proc === null) start(other);
      }
      return;
    }
    process.stdout.write(`${tagLine(line, slot.index)}\n`);
  };

  const onStderr = (slot: Slot, line: string) => {
    if (line === slot.lastError) return;
    slot.lastError = line;
    process.stderr.write(`${line}\n`);
  };

  const start = (slot: Slot) => {
    slot.timer = null;
    slot.listening = false;
    slot.startedAt = Date.now();
    let proc: Child;
    try {
      proc = Bun.spawn(command, {
        env: { ...baseEnv, [WORKER_ENV]: String(slot.index), PORT: String(port) },
        stdin: "ignore",
        stdout: "pipe",
        stderr: "pipe",
      });
    } catch (e) {
      log.error("cannot start worker", { worker: slot.index, error: errorText(e) });
      exited(slot, null, 1, null);
      return;
    }
    slot.proc = proc;
    slot.pumps = [
      pump(proc.stdout, (line) => onStdout(slot, line)),
      pump(proc.stderr, (line) => onStderr(slot, line)),
    ];
    log.info("worker started", { worker: slot.index, pid: proc.pid, restarts: slot.restarts });
    proc.exited.then(() => exited(slot, proc, proc.exitCode, proc.signalCode));
  };

  const exited = (
    slot: Slot,
    proc: Child | null,
    code: number | null,
    signal: string | number | null,
  ) => {
    if (stopping) return;
    const upMs = Date.now() - slot.startedAt;
    const fields = { worker: slot.index, pid: proc?.pid, code, signal, up_ms: upMs };
    if (!slot.listening) {
      slot.failedStarts++;
      if (slot.failedStarts >= MAX_FAILED_STARTS) {
        const how = code !== null ? `with code ${code}` : `on ${signal}`;
        log.error("worker keeps failing at start: giving up", {
          ...fields,
          attempts: slot.failedStarts,
        });
        console.error(
          `kabar: worker ${slot.index} exited ${how} before listening ${slot.failedStarts} times in a row; giving up`,
        );
        drain().then(() => finish(1));
        return;
      }
    }
    if (upMs >= RESTART_RESET_AFTER_MS) slot.delayMs = RESTART_INITIAL_MS;
    const delay = slot.delayMs;
    slot.delayMs = Math.min(delay * 2, RESTART_MAX_MS);
    slot.restarts++;
    log.warn("worker exited: restarting", { ...fields, restart_in_ms: delay });
    slot.timer = setTimeout(() => start(slot), delay);
  };

  const alive = (slot: Slot): slot is Slot & { proc: Child } =>
    slot.proc !== null && slot.proc.exitCode === null && slot.proc.signalCode === null;

  let draining: Promise<void> | undefined;
  const drain = (): Promise<void> => {
    draining ??= (async () => {
      stopping = true;
      for (const slot of slots) if (slot.timer) clearTimeout(slot.timer);
      const live = slots.filter(alive);
      for (const slot of live) slot.proc.kill("SIGTERM");
      const all = Promise.all(live.map((slot) => slot.proc.exited));
      const late = await Promise.race([
        all.then(() => false),
        Bun.sleep(DRAIN_TIMEOUT_MS).then(() => true),
      ]);
      if (late)
        for (const slot of slots.filter(alive)) {
          log.warn("worker did not stop in time: killed", {
            worker: slot.index,
            pid: slot.proc.pid,
          });
          slot.proc.kill("SIGKILL");
        }
      await all;
      // The workers' last lines ("stopped"), before the supervisor's own.
      await Promise.race([Promise.all(slots.flatMap((s) => s.pumps)), Bun.sleep(1000)]);
    })();
    return draining;
  };

  const onSignal = (signal: string) => {
    if (draining) {
      // A second Ctrl-C: no more waiting.
      log.warn("second signal: killing workers", { signal });
      for (const slot of slots.filter(alive)) slot.proc.kill("SIGKILL");
      return;
    }
    log.info("shutting down", { signal, workers: slots.filter(alive).length });
    drain().then(() => {
      log.info("stopped");
      finish(0);
    });
  };
  const onTerm = () => onSignal("SIGTERM");
  const onInt = () => onSignal("SIGINT");
  process.on("SIGTERM", onTerm);
  process.on("SIGINT", onInt);

  start(slots[0] as Slot);
  const code = await done;
  process.off("SIGTERM", onTerm);
  process.off("SIGINT", onInt);
  return code;
}
