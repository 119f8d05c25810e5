// The open-files table, grown once at start (FD_PREALLOCATE). Linux keeps a process's open files
// in a table that doubles when a new descriptor does not fit (64, 128, … entries); in a
// process with threads (Bun is one) each doubling waits for an RCU grace period inside the
// accept() that needed it, with the event loop stopped: measured on this project's 2-core VM at
// ~11 ms for one accept, in the middle of a burst of 1,000 connects (bench/floods.ts), and ~40 ms
// in all for the first 5,000 descriptors of a process. The kernel never shrinks the table, so
// opening /dev/null up to the wanted count once, before the server listens, and closing them at
// once leaves every later socket a slot without the wait. Linux only (elsewhere: nothing done).
import { closeSync, openSync, readFileSync } from "node:fs";

/** Descriptors left free below the open-files limit while the table grows. */
const HEADROOM = 64;

/** The soft open-files limit of this process, from /proc (undefined when unknown or unlimited). */
export function openFilesLimit(limits?: string): number | undefined {
  let text = limits;
  if (text === undefined) {
    try {
      text = readFileSync("/proc/self/limits", "utf8");
    } catch {
      return undefined;
    }
  }
  const m = /^Max open files\s+(\d+)/m.exec(text);
  return m ? Number(m[1]) : undefined;
}

export interface Preallocated {
  /** The highest descriptor opened (the table now has a slot for it and all below). */
  top: number;
  ms: number;
}

/**
 * Grows the table to hold `want` descriptors (at most the open-files limit less a little
 * headroom); undefined when nothing was done (0, not Linux, or no descriptor could be opened).
 */
export function preallocateFds(want: number): Preallocated | undefined {
  if (want <= 0 || process.platform !== "linux") return undefined;
  const limit = openFilesLimit();
  const target = Math.min(want, limit === undefined ? want : limit - HEADROOM);
  const start = performance.now();
  const fds: number[] = [];
  let top = -1;
  try {
    while (top < target - 1) {
      top = openSync("/dev/null", "r");
      fds.push(top);
    }
  } catch {
    // EMFILE or ENFILE: the table is as big as this process may use; stop there.
  } finally {
    for (const fd of fds) closeSync(fd);
  }
  if (fds.length === 0) return undefined;
  return { top, ms: Math.round(performance.now() - start) };
}
