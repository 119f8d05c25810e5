// Cluster: how far this node has heard each room it listens to — the latest seq that came over
// the Broker — so that a join can tell whether messages its read already counted are still on
// their way here. A join reads the room's position (and history) over one Redis connection while
// the room's messages come over another, and CLUSTER_COALESCE_MS may hold them a little: a
// message the read counted but this node has not heard yet would reach the joiner a second time
// after its replay (or, on a plain join, after a room_joined whose seq it is under). So a join
// whose read is ahead of what was heard first waits for the Broker's barrier (`Broker.sync`).
import type { Position } from "../history/history.ts";

export class Heard {
  private readonly rooms = new Map<string, Position>();

  /** A room message came over the Broker, in the room's order. */
  message(room: string, epoch: string | undefined, seq: number | undefined): void {
    if (epoch === undefined || seq === undefined) return;
    const h = this.rooms.get(room);
    if (h === undefined) this.rooms.set(room, { epoch, seq });
    else {
      h.epoch = epoch;
      h.seq = seq;
    }
  }

  /**
   * Whether every message up to `top` has come here already — or none ever will: a room with
   * no message yet (whatever comes later has a higher seq).
   */
  covers(room: string, top: Position): boolean {
    if (top.seq === 0) return true;
    const h = this.rooms.get(room);
    return h !== undefined && h.epoch === top.epoch && h.seq >= top.seq;
  }

  /** The node stopped listening to the room. */
  forget(room: string): void {
    this.rooms.delete(room);
  }

  get size(): number {
    return this.rooms.size;
  }
}
