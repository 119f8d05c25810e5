// Heartbeats: this node tells the directory it is alive (with its socket count) every
// NODE_TTL_SECONDS / 3 at most 1 s apart, and cleans up after nodes whose heartbeat expired —
// their sockets leave room member counts and per-user counts. If the directory did not know this
// node any more (Redis lost its data, or the node was given up for dead while paused), the node
// records its state again.
import { errorText, type Logger } from "../log.ts";
import type { RoomRegistry } from "../rooms/registry.ts";
import type { NodeDirectory } from "./nodes.ts";

export interface HeartbeatOwner {
  readonly nodeId: string;
  connections(): number;
  /** Records this node's users and room members again. */
  resync(): Promise<void>;
  /** A dead node's sockets were removed from the rooms: its users' presence goes too. */
  dead(nodeId: string): Promise<void>;
}

export class Heartbeat {
  private timer: ReturnType<typeof setInterval> | null = null;
  private beating = false;
  private known = false;
  readonly periodMs: number;

  constructor(
    private readonly owner: HeartbeatOwner,
    private readonly nodes: NodeDirectory,
    private readonly registry: RoomRegistry,
    private readonly log: Logger,
    private readonly ttlMs: number,
  ) {
    this.periodMs = Math.max(50, Math.min(1000, Math.floor(ttlMs / 3)));
  }

  /** Beats every `periodMs` (await one `beat` first: a node is listed before it takes sockets). */
  start(): void {
    this.timer = setInterval(() => {
      this.beat(Date.now()).catch(() => {});
    }, this.periodMs);
    this.timer.unref?.();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  /** One beat at `now`: alive until now + TTL; clean up after the dead. Never throws. */
  async beat(now: number): Promise<void> {
    if (this.beating) return;
    this.beating = true;
    try {
      const fresh = await this.nodes.heartbeat(
        this.owner.nodeId,
        this.owner.connections(),
        now + this.ttlMs,
      );
      if (fresh && this.known) {
        this.log.warn("node was not in the directory: recording its state again", {
          node: this.owner.nodeId,
        });
        await this.owner.resync();
      }
      this.known = true;
      for (const dead of await this.nodes.claimDead(now, this.ttlMs)) {
        const members = await this.registry.purgeNode(dead, now);
        await this.owner.dead(dead);
        await this.nodes.bury(dead);
        this.log.warn("node dead: its sockets removed", { node: dead, room_members: members });
      }
    } catch (e) {
      this.log.debug("heartbeat failed", { error: errorText(e) });
    } finally {
      this.beating = false;
    }
  }
}
