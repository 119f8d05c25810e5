// Per-address connection-rate limit (CONNECT_RATE_PER_IP): a token bucket per client address
// that starts full with a burst of 10× the rate and refills at the rate; each WebSocket upgrade
// attempt takes one token, an empty bucket answers 429 before the upgrade. IPv6 addresses are
// counted per /64 (one client usually holds a whole /64). The map is bounded: a bucket that has
// refilled is the same as no bucket, so it is dropped at the next sweep, and past MAX_ENTRIES
// the oldest entries go first (a flood of distinct addresses costs at most MAX_ENTRIES entries).
// One node counts on its own: in cluster mode the limit is per node.
//
// A refusal costs the server nearly what a connection does (accept, parse, answer, close: on this
// machine a client retrying at once got 24,000 429s a second and slowed everyone else 2.5×), so
// it is held CONNECT_REFUSAL_DELAY_MS before it is sent (`DelayedRefusals`): a client that retries
// as soon as it is answered then makes only as many attempts a second as it has in flight. At
// most MAX_DELAYED wait at once (a few bytes and one socket each); beyond that, at once.

export const BURST_FACTOR = 10;
export const MAX_DELAYED = 1_000;
export const MAX_ENTRIES = 100_000;
const SWEEP_EVERY_MS = 10_000;

interface Bucket {
  tokens: number;
  last: number;
}

export class ConnectLimit {
  private readonly buckets = new Map<string, Bucket>();
  private readonly burst: number;
  private readonly perMs: number;
  private lastSweep = 0;

  constructor(
    /** New sockets per second per address; 0 turns the limit off. */
    readonly ratePerSecond: number,
    private readonly maxEntries = MAX_ENTRIES,
  ) {
    this.burst = ratePerSecond * BURST_FACTOR;
    this.perMs = ratePerSecond / 1000;
  }

  get enabled(): boolean {
    return this.ratePerSecond > 0;
  }

  /** Buckets kept now (bounded by `maxEntries`). */
  get size(): number {
    return this.buckets.size;
  }

  /**
   * Takes one token for `address`: 0 when the connection may go on, else the whole seconds
   * (at least 1) until the address has a token again (for `Retry-After`).
   */
  take(address: string, now: number): number {
    if (this.perMs <= 0) return 0;
    if (now - this.lastSweep >= SWEEP_EVERY_MS) this.sweep(now);
    const key = addressKey(address);
    let b = this.buckets.get(key);
    if (b === undefined) {
      if (this.buckets.size >= this.maxEntries) {
        const oldest = this.buckets.keys().next().value;
        if (oldest !== undefined) this.buckets.delete(oldest);
      }
      b = { tokens: this.burst, last: now };
      this.buckets.set(key, b);
    } else if (now > b.last) {
      b.tokens = Math.min(this.burst, b.tokens + (now - b.last) * this.perMs);
      b.last = now;
    }
    if (b.tokens >= 1) {
      b.tokens -= 1;
      return 0;
    }
    return Math.max(1, Math.ceil((1 - b.tokens) / this.perMs / 1000));
  }

  /** Drops every bucket that has refilled by `now` (it holds nothing worth keeping). */
  sweep(now: number): void {
    this.lastSweep = now;
    for (const [key, b] of this.buckets)
      if (b.tokens + (now - b.last) * this.perMs >= this.burst) this.buckets.delete(key);
  }
}

/** The bucket key of a peer address: IPv4 as is (also when IPv4-mapped), IPv6 by its /64. */
export function addressKey(address: string): string {
  if (!address.includes(":")) return address;
  const lower = address.toLowerCase();
  if (lower.startsWith("::ffff:") && lower.includes(".")) return lower.slice(7);
  const [head = "", tail] = lower.split("::", 2);
  const left = head === "" ? [] : head.split(":");
  const right = tail === undefined || tail === "" ? [] : tail.split(":");
  const groups =
    tail === undefined
      ? left
      : [...left, ...Array(Math.max(0, 8 - left.length - right.length)).fill("0"), ...right];
  return `${groups
    .slice(0, 4)
    .map((g) => Number.parseInt(g || "0", 16).toString(16))
    .join(":")}::/64`;
}

/** Refusals held before they are sent (see the top of this file). */
export class DelayedRefusals {
  private waiting = 0;

  constructor(
    /** 0: every refusal is sent at once. */
    readonly delayMs: number,
    private readonly max = MAX_DELAYED,
  ) {}

  /** `answer`, after `delayMs` unless `max` are waiting already. */
  hold(answer: () => Response): Response | Promise<Response> {
    if (this.delayMs <= 0 || this.waiting >= this.max) return answer();
    this.waiting++;
    return new Promise<Response>((resolve) =>
      setTimeout(() => {
        this.waiting--;
        resolve(answer());
      }, this.delayMs),
    );
  }

  /** Refusals waiting now. */
  get size(): number {
    return this.waiting;
  }
}
