// Token bucket: starts full, refills continuously, one token per accepted frame. O(1) per take.

/** What a user's rate limit answers per frame (cluster mode leases: src/cluster/leases.ts). */
export interface RateBucket {
  /** Takes one token: true/false at once, or a promise while the answer needs the cluster. */
  take(now: number): boolean | Promise<boolean>;
  /** Whole seconds until one token is back, rounded up, at least 1. */
  retryAfterSeconds(now: number): number;
  /** True when the bucket holds no state worth keeping. */
  isFull(now: number): boolean;
  /** The user's last socket on this node closed. */
  release?(): void;
}

export class TokenBucket implements RateBucket {
  tokens: number;
  last: number;

  constructor(
    private readonly capacity: number,
    private readonly refillPerMs: number,
    now: number,
  ) {
    this.tokens = capacity;
    this.last = now;
  }

  private refill(now: number): void {
    if (now > this.last) {
      this.tokens = Math.min(this.capacity, this.tokens + (now - this.last) * this.refillPerMs);
      this.last = now;
    }
  }

  /** Takes one token; false when the bucket is empty (the frame is refused). */
  take(now: number): boolean {
    this.refill(now);
    if (this.tokens >= 1) {
      this.tokens -= 1;
      return true;
    }
    return false;
  }

  /** Whole seconds until one token is back, rounded up, at least 1. */
  retryAfterSeconds(now: number): number {
    this.refill(now);
    const ms = (1 - this.tokens) / this.refillPerMs;
    return Math.max(1, Math.ceil(ms / 1000));
  }

  /** True when the bucket would be full at `now`: it holds no state worth keeping. */
  isFull(now: number): boolean {
    this.refill(now);
    return this.tokens >= this.capacity;
  }
}
