// Preloaded (`bun --preload`) into both servers under test by the harness, never by Kabar itself:
// on SIGUSR2 the process runs a full, synchronous garbage collection and then writes how many it
// has run to <BENCH_GC_DIR>/gc-<pid>, which the harness waits for. Memory is read after one, so
// that RSS counts what the server keeps per socket rather than garbage a timer has not yet
// collected (left alone, Kabar's and the baseline's RSS drop by 2–3 MiB at a random moment
// 0.5–3 s after a burst of connections, which made RSS per connection swing by ±20%).
// With BENCH_TIMERS=1 (the soak, bench/soak.ts) it also counts the process's pending timers —
// setTimeout not yet fired or cleared, setInterval not yet cleared — and writes that count to
// <BENCH_GC_DIR>/timers-<pid> just before the gc count, so a timer leak shows as a growing number.
import { appendFileSync, readFileSync, writeFileSync } from "node:fs";
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
// 2) is appended to that file as `<wall-clock ms when the gap began> <gap ms> <ran ms> <waited ms>
// <process cpu ms>`: over the gap, how long the loop's thread ran and how long it waited,
// runnable, for its core (/proc/thread-self/schedstat: another process or a kernel thread had
// it), and the CPU time of the whole process (the loop's thread and the runtime's others: the
// garbage collector's, the JIT compiler's) — so a stall of the server's own work can be told from
// one the machine imposed on it, and both from a delay elsewhere (kernel, client). The last three
// are -1 where schedstat cannot be read (not Linux). The probe wakes the loop every millisecond:
// it changes what it measures a little, hence only on request.
const lagFile = process.env.BENCH_LAG_FILE;
if (lagFile) {
  const over = Number(process.env.BENCH_LAG_MS ?? "2") || 2;
  /** The loop thread's [ran, waited] so far (ns), or null where schedstat is missing. */
  const sched = (): [number, number] | null => {
    try {
      const [ran = 0, waited = 0] = readFileSync("/proc/thread-self/schedstat", "utf8")
        .split(" ")
        .map(Number);
      return [ran, waited];
    } catch {
      return null;
    }
  };
  const cpuMs = () => {
    const c = process.cpuUsage();
    return (c.user + c.system) / 1000;
  };
  let last = performance.now();
  let s0 = sched();
  let c0 = cpuMs();
  setInterval(() => {
    const now = performance.now();
    const gap = now - last;
    last = now;
    const s1 = sched();
    const c1 = cpuMs();
    if (gap > over + 1) {
      const ms = (ns: number) => (ns / 1e6).toFixed(2);
      const how =
        s0 === null || s1 === null
          ? "-1 -1 -1"
          : `${ms(s1[0] - s0[0])} ${ms(s1[1] - s0[1])} ${(c1 - c0).toFixed(2)}`;
      appendFileSync(
        lagFile,
        `${(performance.timeOrigin + now - gap).toFixed(1)} ${(gap - 1).toFixed(2)} ${how}\n`,
      );
    }
    s0 = s1;
    c0 = c1;
  }, 1);
}
