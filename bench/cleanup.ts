// Processes the cluster benchmarks started and have not stopped yet, so that Ctrl-C (SIGINT) or
// SIGTERM to the harness still stops every server, redis-server and load client it started
// (errors are handled by each phase's `finally`; this covers the harness being told to stop).
const live = new Set<() => Promise<void>>();

/** Registers `stop`; returns a stop that also unregisters it (call that one). */
export function tracked(stop: () => Promise<void>): () => Promise<void> {
  let done: Promise<void> | null = null;
  const once = () => {
    done ??= stop().finally(() => live.delete(once));
    return done;
  };
  live.add(once);
  return once;
}

/** Stops everything still registered (bounded: 15 s). */
export async function stopTracked(): Promise<void> {
  await Promise.race([Promise.allSettled([...live].map((s) => s())), Bun.sleep(15_000)]);
}

/** On SIGINT/SIGTERM: stop what is registered, then exit 130. */
export function stopOnSignals(): void {
  const handler = (signal: string) => {
    process.stderr.write(`[bench] ${signal}: stopping every process the bench started\n`);
    stopTracked().finally(() => process.exit(130));
  };
  process.once("SIGINT", () => handler("SIGINT"));
  process.once("SIGTERM", () => handler("SIGTERM"));
}
