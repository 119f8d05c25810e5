// Upkeep timers: token expiry, empty-room removal, idle rate-limit buckets. One interval; each
// task runs at its own period and costs nothing when there is nothing to do. `run(now)` is the
// whole upkeep at a chosen time (tests drive it with their own clock).
import type { Config } from "../config.ts";
import type { History } from "../history/history.ts";
import { errorText, type Logger } from "../log.ts";
import type { RoomRegistry } from "../rooms/registry.ts";
import type { Sessions } from "./sessions.ts";

const EVICT_EVERY_MS = 10_000;

export class Upkeep {
  private timer: ReturnType<typeof setInterval> | null = null;
  private lastSweep = 0;
  private lastEvict = 0;

  constructor(
    private readonly config: Config,
    private readonly log: Logger,
    private readonly sessions: Sessions,
    private readonly registry: RoomRegistry,
    private readonly history: History,
  ) {}

  start(): void {
    const tick = Math.min(1000, Math.max(50, this.config.roomEmptyTtlSeconds * 250));
    this.timer = setInterval(() => this.run(Date.now()), tick);
    this.timer.unref?.();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  run(now: number): void {
    this.sessions.expireTokens(now / 1000);
    const ttlMs = this.config.roomEmptyTtlSeconds * 1000;
    if (now - this.lastSweep >= Math.min(ttlMs / 4, 1000)) {
      this.lastSweep = now;
      this.registry
        .sweep(now, ttlMs)
        .then((removed) => {
          for (const room of removed) {
            this.log.info("room removed (empty)", { room });
            this.history.drop(room).catch(() => {});
          }
        })
        .catch((e) => this.log.error("room sweep failed", { error: errorText(e) }));
    }
    if (now - this.lastEvict >= EVICT_EVERY_MS) {
      this.lastEvict = now;
      this.sessions.evictIdle(now);
    }
  }
}
