// Upgrades per event-loop turn (WS_UPGRADES_PER_TURN). A burst of handshakes — a thousand
// sockets arriving at once — would otherwise run back to back in one turn of the loop (token
// check, user lookup, upgrade, welcome, topic subscriptions: tens of microseconds each) while
// every other socket's frames wait behind all of them. Past `perTurn` upgrades in one turn, an
// upgrade waits for a later turn (setImmediate), in arrival order, `perTurn` per turn; between
// turns the loop polls every other socket. A burst then takes a little longer to get in, and
// the sockets already there keep their latency. 0 turns pacing off.

export class UpgradePacer {
  /** Upgrades admitted in this turn. */
  private used = 0;
  /** Waiting upgrades from `head` on (the array is compacted now and then, not shifted). */
  private waiting: (() => void)[] = [];
  private head = 0;
  private scheduled = false;
  private readonly turn = () => this.nextTurn();

  constructor(readonly perTurn: number) {}

  get enabled(): boolean {
    return this.perTurn > 0;
  }

  /** Upgrades waiting for a later turn. */
  get queued(): number {
    return this.waiting.length - this.head;
  }

  /** `true`: go ahead now; a promise: resolves in the turn this upgrade may run in. */
  admit(): true | Promise<void> {
    this.schedule();
    if (this.queued === 0 && this.used < this.perTurn) {
      this.used++;
      return true;
    }
    return new Promise<void>((resolve) => this.waiting.push(resolve));
  }

  private schedule(): void {
    if (this.scheduled) return;
    this.scheduled = true;
    setImmediate(this.turn);
  }

  private nextTurn(): void {
    this.scheduled = false;
    const n = Math.min(this.perTurn, this.queued);
    this.used = n;
    for (let i = 0; i < n; i++) (this.waiting[this.head++] as () => void)();
    if (this.head === this.waiting.length) {
      this.waiting = [];
      this.head = 0;
    } else if (this.head > 1024) {
      this.waiting = this.waiting.slice(this.head);
      this.head = 0;
    }
    // A turn that admitted some: the next one starts the count again.
    if (n > 0) this.schedule();
  }
}
