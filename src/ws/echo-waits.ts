// Cluster mode: this node's room messages on their way through Redis, until each comes back in
// the room's order (its echo). What its sender is answered after such a message waits for it
// (`Conn.held`); when the echo has not come `waitMs` after Redis answered, the sender goes on
// regardless. Every wait has the same length, so deadlines fall due in the order they were set:
// one queue and one timer for all of them, not a timer per message.
import type { Rendered } from "../protocol.ts";
import type { Conn } from "./connection.ts";

/** The sender's side of a wait (a `Conn`). */
export type Sender = Pick<Conn, "echoedUpTo">;

export interface EchoWait {
  readonly from: Sender;
  /** The message's number among its sender's (`Conn.messageSent`). */
  readonly k: number;
  /** The bot's reply, sent right after the echo. */
  readonly bot: Rendered | undefined;
  due: number;
}

interface Deadline {
  id: string;
  wait: EchoWait;
}

/** Below this many spent entries the queue's head is not cut off. */
const COMPACT_AT = 1_024;

export class EchoWaits {
  private readonly waiting = new Map<string, EchoWait>();
  private readonly deadlines: Deadline[] = [];
  private head = 0;
  private timer: ReturnType<typeof setTimeout> | null = null;

  constructor(
    private readonly waitMs: number,
    private readonly now: () => number = () => performance.now(),
  ) {}

  /** Message `id`, number `k` of `from`, went to Redis. */
  start(id: string, from: Sender, k: number, bot: Rendered | undefined): EchoWait {
    const wait: EchoWait = { from, k, bot, due: Number.POSITIVE_INFINITY };
    this.waiting.set(id, wait);
    return wait;
  }

  /** Redis took it: from now on its sender waits at most `waitMs` (no-op once it came back). */
  answered(id: string, wait: EchoWait): void {
    if (this.waiting.get(id) !== wait) return;
    wait.due = this.now() + this.waitMs;
    this.deadlines.push({ id, wait });
    if (this.timer === null) this.arm(this.waitMs);
  }

  /** Its echo came back: the bot's reply and what waited behind it go out. */
  echoed(id: string): void {
    const wait = this.waiting.get(id);
    if (wait === undefined) return;
    this.waiting.delete(id);
    wait.from.echoedUpTo(wait.k, wait.bot);
  }

  /** It never reached Redis: no echo will come, what waited goes out (without the bot's reply). */
  failed(id: string, wait: EchoWait): void {
    if (this.waiting.get(id) === wait) this.waiting.delete(id);
    wait.from.echoedUpTo(wait.k);
  }

  /** Messages still waiting for their echo. */
  get size(): number {
    return this.waiting.size;
  }

  /** Deadlines queued, spent ones included until the queue is compacted (for tests). */
  get queued(): number {
    return this.deadlines.length - this.head;
  }

  private arm(ms: number): void {
    this.timer = setTimeout(this.expire, Math.max(1, Math.ceil(ms)));
    this.timer.unref?.();
  }

  private readonly expire = (): void => {
    this.timer = null;
    const now = this.now();
    const q = this.deadlines;
    while (this.head < q.length) {
      const d = q[this.head] as Deadline;
      if (d.wait.due > now) break;
      this.head++;
      if (this.waiting.get(d.id) === d.wait) {
        this.waiting.delete(d.id);
        d.wait.from.echoedUpTo(d.wait.k);
      }
    }
    if (this.head === q.length) {
      q.length = 0;
      this.head = 0;
      return;
    }
    if (this.head >= COMPACT_AT && this.head * 2 >= q.length) {
      q.splice(0, this.head);
      this.head = 0;
    }
    this.arm((q[this.head] as Deadline).wait.due - now);
  };
}
