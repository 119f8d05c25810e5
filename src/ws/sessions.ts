// User sessions on this node: each user's live sockets with the user's shared rate-limit bucket
// (direct messages and kicks go to these sockets), the live-socket count, and token expiry.
import type { Config } from "../config.ts";
import type { Logger } from "../log.ts";
import { type RateBucket, TokenBucket } from "../rate-limit.ts";
import type { Conn } from "./connection.ts";

export interface UserSlot {
  bucket: RateBucket;
  conns: Set<Conn>;
}

export const CLOSE = {
  policy: 1008,
  goingAway: 1001,
} as const;

export class Sessions {
  /** Live sockets on this node. */
  connections = 0;
  private readonly slots = new Map<string, UserSlot>();
  /** Earliest token expiry (seconds) among live sockets, or later: nothing expires before it. */
  private nextExpiry = Number.POSITIVE_INFINITY;
  private readonly refillPerMs: number;

  constructor(
    private readonly config: Config,
    private readonly log: Logger,
    /** Makes a user's bucket; a plain local token bucket by default (one node). */
    private readonly makeBucket?: (userId: string, local: TokenBucket) => RateBucket,
  ) {
    this.refillPerMs = config.rateLimitRefillPerSecond / 1000;
  }

  /** Adds a socket to its user's slot; false when the user already has the most sockets allowed. */
  add(conn: Conn, now: number): boolean {
    let slot = this.slots.get(conn.userId);
    if (slot === undefined) {
      const local = new TokenBucket(this.config.rateLimitCapacity, this.refillPerMs, now);
      slot = {
        bucket: this.makeBucket ? this.makeBucket(conn.userId, local) : local,
        conns: new Set(),
      };
      this.slots.set(conn.userId, slot);
    }
    if (slot.conns.size >= this.config.maxConnectionsPerUser) return false;
    conn.slot = slot;
    slot.conns.add(conn);
    if (conn.exp < this.nextExpiry) this.nextExpiry = conn.exp;
    this.connections++;
    return true;
  }

  /** Removes a socket; returns true when it was its user's last live socket here. */
  remove(conn: Conn): boolean {
    const slot = conn.slot;
    if (slot === null || !slot.conns.delete(conn)) return false;
    this.connections--;
    if (slot.conns.size > 0) return false;
    slot.bucket.release?.();
    return true;
  }

  /** The user's live sockets here (empty when none). */
  socketsOf(userId: string): ReadonlySet<Conn> {
    return this.slots.get(userId)?.conns ?? EMPTY;
  }

  /** The user's live socket with this id here, or null. */
  find(userId: string, id: number | undefined): Conn | null {
    if (id === undefined) return null;
    for (const conn of this.socketsOf(userId)) if (conn.id === id) return conn;
    return null;
  }

  isOnline(userId: string): boolean {
    const slot = this.slots.get(userId);
    return slot !== undefined && slot.conns.size > 0;
  }

  /** Closes every socket of one user here; returns how many. */
  kick(userId: string, reason: string): number {
    const slot = this.slots.get(userId);
    if (!slot) return 0;
    const conns = [...slot.conns];
    for (const conn of conns) conn.ws?.close(CLOSE.policy, reason);
    return conns.length;
  }

  /** Closes every socket (shutdown). */
  closeAll(code: number, reason: string): void {
    for (const slot of this.slots.values())
      for (const conn of [...slot.conns]) conn.ws?.close(code, reason);
  }

  /**
   * Closes the sockets whose token has expired. One pass over the live sockets, run only when the
   * earliest expiry is due (tokens live for days), instead of an expiry index kept per socket.
   */
  expireTokens(nowSeconds: number): void {
    if (nowSeconds < this.nextExpiry) return;
    let next = Number.POSITIVE_INFINITY;
    for (const slot of this.slots.values()) {
      for (const conn of [...slot.conns]) {
        if (conn.exp > nowSeconds) {
          if (conn.exp < next) next = conn.exp;
          continue;
        }
        this.log.info("token expired", { user: conn.userId, conn: conn.id });
        conn.ws?.close(CLOSE.policy, "Token expired");
      }
    }
    this.nextExpiry = next;
  }

  /** Drops the slots of users with no socket whose bucket is full again (nothing worth keeping). */
  evictIdle(now: number): void {
    for (const [userId, slot] of this.slots)
      if (slot.conns.size === 0 && slot.bucket.isFull(now)) this.slots.delete(userId);
  }

  /** Live sockets per user (users with at least one). */
  counts(): Map<string, number> {
    const out = new Map<string, number>();
    for (const [userId, slot] of this.slots)
      if (slot.conns.size > 0) out.set(userId, slot.conns.size);
    return out;
  }

  /** Every live socket. */
  *all(): IterableIterator<Conn> {
    for (const slot of this.slots.values()) yield* slot.conns;
  }

  /** Number of per-user slots kept (live users plus users with a partly used bucket). */
  get size(): number {
    return this.slots.size;
  }
}

const EMPTY: ReadonlySet<Conn> = new Set();
