// What arrives from Redis, held briefly under load so each socket gets it in fewer writes
// (CLUSTER_COALESCE_MS). A node's fan-out writes each socket once per event-loop turn whatever
// that turn delivers, and the kernel's cost of a loopback or network write, not the bytes in it,
// is most of a delivery's cost. One node gets its room messages in big turns; a cluster node gets
// them in one Redis message per room per appending node, most in a turn of their own: measured
// here (bench:cluster, 10 rooms × 100, 2 nodes) 4.1 deliveries per socket write against 7.2 on
// one node. So while messages come densely — the average gap between them (EWMA) is shorter than
// the hold — the first waits `holdMs` and everything that came in the meantime goes out with it,
// in arrival order; when they come sparsely each goes out at once, so a quiet room gets no delay.
// The same order is kept in both cases: items queued are always delivered before a later one.

/** How much the newest gap counts in the average (the rest is the average so far). */
const WEIGHT = 0.125;
/** Dense: the average gap is under this many holds (a hold then likely gathers several). */
const DENSE = 2;
/** Gaps are counted at most this long: one quiet minute does not take minutes to forget. */
const MAX_GAP_MS = 100;

export interface CoalescerClock {
  now(): number;
  setTimeout(run: () => void, ms: number): unknown;
  clearTimeout(timer: unknown): void;
}

const realClock: CoalescerClock = {
  now: () => performance.now(),
  setTimeout: (run, ms) => setTimeout(run, ms),
  clearTimeout: (timer) => clearTimeout(timer as ReturnType<typeof setTimeout>),
};

export class Coalescer<T> {
  private readonly queued: T[] = [];
  private timer: unknown = null;
  private last = Number.NEGATIVE_INFINITY;
  /** The EWMA of the gaps between arrivals (ms); starts sparse. */
  private gap = MAX_GAP_MS;
  private flushing = false;
  /** Holds so far, and the items that went out after one (for tests and benchmarks). */
  holds = 0;
  held = 0;

  /** `holdMs` 0: every item goes out at once. */
  constructor(
    private readonly holdMs: number,
    private readonly deliver: (item: T) => void,
    private readonly clock: CoalescerClock = realClock,
  ) {}

  /** One arrival (one Redis message) of one or more items, in order. */
  add(items: readonly T[]): void {
    if (items.length === 0) return;
    const now = this.clock.now();
    const gap = Math.min(MAX_GAP_MS, now - this.last);
    this.last = now;
    this.gap += WEIGHT * (gap - this.gap);
    if (this.timer !== null || this.flushing) {
      for (const item of items) this.queued.push(item);
      return;
    }
    if (this.holdMs <= 0 || this.gap >= DENSE * this.holdMs) {
      for (const item of items) this.deliver(item);
      return;
    }
    for (const item of items) this.queued.push(item);
    this.holds++;
    this.timer = this.clock.setTimeout(this.flush, this.holdMs);
  }

  /** Everything held goes out now (also what the timer runs). */
  readonly flush = (): void => {
    if (this.timer !== null) this.clock.clearTimeout(this.timer);
    this.timer = null;
    // An item that arrives while these go out (a handler that adds) queues behind them, in order.
    this.flushing = true;
    try {
      for (let i = 0; i < this.queued.length; i++) this.deliver(this.queued[i] as T);
    } finally {
      this.flushing = false;
      this.held += this.queued.length;
      this.queued.length = 0;
    }
  };

  /** Drops what is held (the broker is closing). */
  clear(): void {
    if (this.timer !== null) this.clock.clearTimeout(this.timer);
    this.timer = null;
    this.queued.length = 0;
  }

  get size(): number {
    return this.queued.length;
  }
}
