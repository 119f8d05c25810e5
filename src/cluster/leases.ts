// Cluster-wide rate limit without a Redis round trip per frame: each user's token bucket lives
// in the shared backend, and a node leases tokens from it in batches. A frame spends a token of
// the local lease (synchronous); when the lease runs low the node fetches the next batch ahead,
// and a frame that finds it empty waits for that one fetch. Every accepted frame spent a token
// taken from the shared bucket, so a user gets at most capacity + refill × elapsed frames across
// all nodes — exactly; what a node leased but did not spend (at most one batch per node holding
// the user's sockets) goes back when the user's last socket there closes.
import type { RateBucket } from "../rate-limit.ts";

export interface Grant {
  /** Tokens handed out (0 … want). */
  granted: number;
  /** Tokens left in the shared bucket after the grant (may be fractional). */
  left: number;
}

/** The shared buckets. One interface; memory and Redis implementations; one contract suite. */
export interface TokenLeases {
  /** Takes up to `want` whole tokens from the user's bucket (full when new), refilled to now. */
  lease(userId: string, want: number, capacity: number, refillPerSecond: number): Promise<Grant>;
  /** Puts unspent tokens back (never above capacity). */
  giveBack(
    userId: string,
    tokens: number,
    capacity: number,
    refillPerSecond: number,
  ): Promise<void>;
  dispose(): Promise<void>;
}

export class MemoryTokenLeases implements TokenLeases {
  private readonly buckets = new Map<string, { tokens: number; last: number }>();

  private bucket(userId: string, capacity: number, refillPerSecond: number) {
    const now = Date.now();
    let b = this.buckets.get(userId);
    if (b === undefined) {
      b = { tokens: capacity, last: now };
      this.buckets.set(userId, b);
    } else if (now > b.last) {
      b.tokens = Math.min(capacity, b.tokens + ((now - b.last) * refillPerSecond) / 1000);
      b.last = now;
    }
    return b;
  }

  async lease(userId: string, want: number, capacity: number, refillPerSecond: number) {
    const b = this.bucket(userId, capacity, refillPerSecond);
    const granted = Math.max(0, Math.min(want, Math.floor(b.tokens)));
    b.tokens -= granted;
    return { granted, left: b.tokens };
  }

  async giveBack(userId: string, tokens: number, capacity: number, refillPerSecond: number) {
    const b = this.bucket(userId, capacity, refillPerSecond);
    b.tokens = Math.min(capacity, b.tokens + tokens);
  }

  async dispose(): Promise<void> {
    this.buckets.clear();
  }
}

/**
 * One user's bucket on one node, in cluster mode: a lease of tokens from the shared bucket.
 * `take` answers at once while the lease holds tokens (or while the shared bucket is known to be
 * empty), else with a promise: the one fetch in flight, shared by every frame that waits.
 */
export class LeasedBucket implements RateBucket {
  private tokens = 0;
  private fetching: Promise<void> | null = null;
  /** The shared bucket was empty: refuse without asking again until then (ms). */
  private emptyUntil = 0;

  constructor(
    private readonly userId: string,
    private readonly leases: TokenLeases,
    private readonly capacity: number,
    private readonly refillPerSecond: number,
    /** Tokens per fetch. */
    private readonly batch: number,
    /** Called when a fetch fails (Redis down): the frame is then judged by `fallback`. */
    private readonly fallback: RateBucket,
  ) {}

  take(now: number): boolean | Promise<boolean> {
    if (this.tokens >= 1) {
      this.tokens -= 1;
      if (this.tokens < this.batch / 2 && this.fetching === null && now >= this.emptyUntil)
        this.fetch(now);
      return true;
    }
    if (now < this.emptyUntil) return false;
    return this.acquire();
  }

  /**
   * Fetches until this frame has a token or the shared bucket is empty. Frames waiting on one
   * fetch resume in their order; those that find its batch spent by the frames before them fetch
   * again (together), so a burst is judged by the shared bucket, not by the batch size.
   */
  private async acquire(): Promise<boolean> {
    for (let round = 0; round < 1000; round++) {
      await this.fetch(Date.now());
      if (this.tokens >= 1) {
        this.tokens -= 1;
        return true;
      }
      if (this.failed) return this.fallback.take(Date.now()) === true;
      if (Date.now() < this.emptyUntil) return false;
    }
    return false;
  }

  private failed = false;

  private fetch(now: number): Promise<void> {
    if (this.fetching !== null) return this.fetching;
    const want = Math.max(1, Math.ceil(this.batch - this.tokens));
    this.fetching = this.leases.lease(this.userId, want, this.capacity, this.refillPerSecond).then(
      ({ granted, left }) => {
        this.failed = false;
        this.tokens += granted;
        if (granted === 0) this.emptyUntil = now + ((1 - left) * 1000) / this.refillPerSecond;
        this.fetching = null;
      },
      () => {
        // Redis out of reach: this node's own bucket decides meanwhile.
        this.failed = true;
        this.fetching = null;
      },
    );
    return this.fetching;
  }

  retryAfterSeconds(now: number): number {
    if (now < this.emptyUntil) return Math.max(1, Math.ceil((this.emptyUntil - now) / 1000));
    return this.fallback.retryAfterSeconds(now);
  }

  /** Nothing worth keeping here once the lease is spent or given back. */
  isFull(_now: number): boolean {
    return this.tokens < 1 && this.fetching === null;
  }

  /** The user's last socket here closed: the unspent lease goes back to the shared bucket. */
  release(): void {
    const n = Math.floor(this.tokens);
    if (n < 1) return;
    this.tokens -= n;
    this.leases.giveBack(this.userId, n, this.capacity, this.refillPerSecond).catch(() => {});
  }
}
