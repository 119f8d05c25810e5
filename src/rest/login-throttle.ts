// Login failure throttling: a fixed window per client address and per email. After
// MAX_FAILURES failures in WINDOW_MS the key gets 429 until its window ends. The clock is
// injectable so a test can reach the end of a window without waiting 15 minutes.
export const MAX_FAILURES = 10;
export const WINDOW_MS = 15 * 60 * 1000;

interface Window {
  start: number;
  failures: number;
}

export class LoginThrottle {
  private readonly windows = new Map<string, Window>();

  private readonly maxFailures: number;
  private readonly windowMs: number;
  /** Milliseconds since the epoch; the login route reads the time from here. */
  readonly now: () => number;

  constructor(options: { maxFailures?: number; windowMs?: number; now?: () => number } = {}) {
    this.maxFailures = options.maxFailures ?? MAX_FAILURES;
    this.windowMs = options.windowMs ?? WINDOW_MS;
    this.now = options.now ?? Date.now;
  }

  /** Seconds until `keys` may try again; 0 when none is throttled. */
  retryAfter(keys: string[], now: number): number {
    let wait = 0;
    for (const key of keys) {
      const w = this.windows.get(key);
      if (!w) continue;
      if (now - w.start >= this.windowMs) {
        this.windows.delete(key);
        continue;
      }
      if (w.failures >= this.maxFailures)
        wait = Math.max(wait, Math.ceil((w.start + this.windowMs - now) / 1000));
    }
    return wait;
  }

  fail(keys: string[], now: number): void {
    for (const key of keys) {
      const w = this.windows.get(key);
      if (!w || now - w.start >= this.windowMs) this.windows.set(key, { start: now, failures: 1 });
      else w.failures++;
    }
    if (this.windows.size > 100_000) this.evict(now);
  }

  succeed(key: string): void {
    this.windows.delete(key);
  }

  evict(now: number): void {
    for (const [key, w] of this.windows)
      if (now - w.start >= this.windowMs) this.windows.delete(key);
  }
}
