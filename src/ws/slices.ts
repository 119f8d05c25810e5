// Big rooms in slices (ROOM_FANOUT_SLICE): a room's sockets on this node sit on Bun topics of at
// most `size` sockets each, per format. A room message goes to the first slice at once and to
// each further slice in a later turn of the event loop, in order, one slice per turn while at
// most 256 wait (a quarter of what waits when more does, so the queue cannot outgrow a busy
// node), so one message to a room of thousands does not hold every other socket of the node for
// the whole fan-out: measured on this project's 2-core VM (bench:floods), one message to 1,050
// sockets held the event loop ~8 ms, against ~3 ms with slices of 256 (the loop's noise there);
// with slices of 64 a turn then holds one slice, ~0.6 ms.
//
// Order stays per socket: each socket sits in one slice, and every publish to a slice past the
// first goes through one queue. What could overtake the queue flushes it first: a socket going
// live in a room (it must not get a message older than its room_joined afterwards), one leaving
// (it still gets what was sent before it left; a socket that closed gets nothing, so its close
// flushes nothing), a sender past the first slice (its echo and what
// follows it), and room-wide events (room closed).
import type { Format } from "../protocol.ts";
import { roomTopic } from "./topics.ts";

export class Slices {
  /** Per format, per room: sockets in each slice (a slice empties but stays, to be refilled). */
  private readonly rooms: Record<Format, Map<string, number[]>> = {
    json: new Map(),
    text: new Map(),
  };
  /** Rooms (per format) with more than one slice: while there are none, `count` is 1 at once. */
  private multi = 0;
  private readonly queue: Array<() => void> = [];
  private head = 0;
  private scheduled = false;

  /** `size` 0: one topic per room and format, nothing deferred. */
  constructor(readonly size: number) {}

  /** The topic of slice `k` of a room in a format; slice 0 is the room's plain topic. */
  topic(format: Format, room: string, k: number): string {
    const t = roomTopic(format, room);
    return k === 0 ? t : `${t}#${k}`;
  }

  /** A socket goes live in the room: the first slice with room for it. */
  assign(format: Format, room: string): number {
    if (this.size <= 0) return 0;
    const rooms = this.rooms[format];
    let counts = rooms.get(room);
    if (counts === undefined) {
      counts = [];
      rooms.set(room, counts);
    }
    let k = counts.findIndex((n) => n < this.size);
    if (k < 0) {
      k = counts.length;
      counts.push(0);
      if (counts.length === 2) this.multi++;
    }
    counts[k] = (counts[k] ?? 0) + 1;
    return k;
  }

  /** A socket left slice `k` of the room. */
  release(format: Format, room: string, k: number): void {
    if (this.size <= 0) return;
    const rooms = this.rooms[format];
    const counts = rooms.get(room);
    if (counts === undefined) return;
    counts[k] = Math.max(0, (counts[k] ?? 0) - 1);
    // Empty slices at the end go (a room that shrinks stops paying for them); one in the middle
    // stays until a joiner refills it.
    const before = counts.length;
    while (counts.length > 0 && counts[counts.length - 1] === 0) counts.pop();
    if (before > 1 && counts.length <= 1) this.multi--;
    if (counts.length === 0) rooms.delete(room);
  }

  /** How many slices the room has in this format (1 when it is not sliced). */
  count(format: Format, room: string): number {
    if (this.multi === 0) return 1;
    const counts = this.rooms[format].get(room);
    return counts === undefined || counts.length === 0 ? 1 : counts.length;
  }

  /** Rooms with live sockets here, per format summed (for `GET /ws/internals`). */
  get tracked(): number {
    return this.rooms.json.size + this.rooms.text.size;
  }

  /** A publish to a slice past the first: after what is queued, in a later turn. */
  defer(publish: () => void): void {
    this.queue.push(publish);
    if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(this.step);
    }
  }

  /** Everything queued goes out now, in order. */
  flush(): void {
    while (this.head < this.queue.length) {
      const publish = this.queue[this.head] as () => void;
      this.queue[this.head++] = noop;
      publish();
    }
    this.queue.length = 0;
    this.head = 0;
  }

  /** Publishes waiting for a later turn. */
  get pending(): number {
    return this.queue.length - this.head;
  }

  /**
   * One slice per turn while at most ONE_PER_TURN wait (a turn then holds the loop for one
   * slice's writes); when more waits, a quarter of it per turn, so the queue cannot outgrow what
   * a busy node adds to it (its wait stays a few turns long).
   */
  private readonly step = (): void => {
    const waiting = this.pending;
    const n = waiting <= ONE_PER_TURN ? 1 : Math.ceil(waiting / DRAIN_SHARE);
    for (let i = 0; i < n && this.head < this.queue.length; i++) {
      const publish = this.queue[this.head] as () => void;
      this.queue[this.head++] = noop;
      publish();
    }
    if (this.head < this.queue.length) {
      setImmediate(this.step);
      return;
    }
    this.queue.length = 0;
    this.head = 0;
    this.scheduled = false;
  };
}

const noop = () => {};
/** Up to this many waiting, a turn runs one of them. */
const ONE_PER_TURN = 256;
/** Past ONE_PER_TURN, a turn runs this share (1 / DRAIN_SHARE) of what waits. */
const DRAIN_SHARE = 4;
