// Preloaded (`bun --preload`) into both servers under test by the harness, never by Kabar itself:
// on SIGUSR2 the process runs a full, synchronous garbage collection and then writes how many it
// has run to <BENCH_GC_DIR>/gc-<pid>, which the harness waits for. Memory is read after one, so
// that RSS counts what the server keeps per socket rather than garbage a timer has not yet
// collected (left alone, Kabar's and the baseline's RSS drop by 2–3 MiB at a random moment
// 0.5–3 s after a burst of connections, which made RSS per connection swing by ±20%).
// With BENCH_TIMERS=1 (the soak, bench/soak.ts) it also counts the process's pending timers —
// setTimeout not yet fired or cleared, setInterval not yet cleared — and writes that count to
// <BENCH_GC_DIR>/timers-<pid> just before the gc count, so a timer leak shows as a growing number.
import { appendFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";

const dir = process.env.BENCH_GC_DIR;

/** Wraps the global timer functions to keep the set of pending timers; returns its size. */
function countTimers(): () => number {
  const live = new Set<unknown>();
  const { setTimeout: st, setInterval: si, clearTimeout: ct, clearInterval: ci } = globalThis;
  const timeout = (fn: (...a: unknown[]) => void, ms?: number, ...args: unknown[]) => {
    const t = st(
      (...a: unknown[]) => {
        live.delete(t);
        fn(...a);
      },
      ms,
      ...args,
    );
    live.add(t);
    return t;
  };
  const interval = (fn: (...a: unknown[]) => void, ms?: number, ...args: unknown[]) => {
    const t = si(fn, ms, ...args);
    live.add(t);
    return t;
  };
  globalThis.setTimeout = Object.assign(timeout, st) as typeof setTimeout;
  globalThis.setInterval = Object.assign(interval, si) as typeof setInterval;
  globalThis.clearTimeout = ((t?: Parameters<typeof clearTimeout>[0]) => {
    live.delete(t);
    ct(t);
  }) as typeof clearTimeout;
  globalThis.clearInterval = ((t?: Parameters<typeof clearInterval>[0]) => {
    live.delete(t);
    ci(t);
  }) as typeof clearInterval;
  return () => live.size;
}

if (dir) {
  const timers = process.env.BENCH_TIMERS === "1" ? countTimers() : null;
  let count = 0;
  process.on("SIGUSR2", () => {
    Bun.gc(true);
    count++;
    if (timers !== null) writeFileSync(join(dir, `timers-${process.pid}`), String(timers()));
    writeFileSync(join(dir, `gc-${process.pid}`), String(count));
  });
}

// With BENCH_LAG_FILE=<path> (bench:floods with BENCH_FLOODS_LAG=1) it also probes the event
// loop: a 1 ms interval, and every gap between two of its runs longer than BENCH_LAG_MS (default
// 2) is appended to that file as `<wall-clock ms when the gap began> <gap ms>`, so a stall of
// the server's loop can be told from a delay elsewhere (kernel, client). The probe wakes the loop
// every millisecond: it changes what it measures a little, hence only on request.
const lagFile = process.env.BENCH_LAG_FILE;
if (lagFile) {
  const over = Number(process.env.BENCH_LAG_MS ?? "2") || 2;
  let last = performance.now();
  setInterval(() => {
    const now = performance.now();
    const gap = now - last;
    last = now;
    if (gap > over + 1)
      appendFileSync(
        lagFile,
        `${(performance.timeOrigin + now - gap).toFixed(1)} ${(gap - 1).toFixed(2)}\n`,
      );
  }, 1);
}
