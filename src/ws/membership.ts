// Local room membership: which of this node's sockets sit in each room (their Bun topic
// subscriptions follow). The node listens to a room on the Broker from the room's first local
// socket to its last; `ready` is that subscription, awaited before a joiner is told it is in.
import type { RoomInfo } from "../rooms/registry.ts";
import type { Conn } from "./connection.ts";
import type { Slices } from "./slices.ts";
import { presenceTopic } from "./topics.ts";

interface LocalRoom {
  /** As the registry said when the first local socket joined (to restore it if Redis loses it). */
  info: Omit<RoomInfo, "members">;
  conns: Set<Conn>;
  ready: Promise<void> | null;
}

export class Membership {
  private readonly rooms = new Map<string, LocalRoom>();

  constructor(
    private readonly listen: (room: string) => Promise<void> | null,
    private readonly unlisten: (room: string) => void,
    private readonly slices: Slices,
  ) {}

  /**
   * Puts a live socket in a room here; resolves when the node hears the room cluster-wide. The
   * socket's Bun topic is subscribed by `live` (after a recovering join has replayed).
   */
  enter(conn: Conn, info: RoomInfo): Promise<void> | null {
    const room = info.name;
    conn.room = room;
    let local = this.rooms.get(room);
    if (local === undefined) {
      const { name, creator, createdAt } = info;
      local = { info: { name, creator, createdAt }, conns: new Set(), ready: null };
      this.rooms.set(room, local);
      local.ready = this.listen(room);
    }
    local.conns.add(conn);
    return local.ready;
  }

  /** From now on the socket gets the room's messages (and with `presence`, its presence events). */
  live(conn: Conn, room: string, presence: boolean): void {
    const slices = this.slices;
    const k = slices.assign(conn.format, room);
    // Publishes still queued for later slices are older than this socket's room_joined.
    if (k > 0 && slices.pending > 0) slices.flush();
    conn.slice = k;
    conn.ws?.subscribe(slices.topic(conn.format, room, k));
    conn.presence = presence;
    if (presence) conn.ws?.subscribe(presenceTopic(conn.format, room));
  }

  /** Takes a socket out of a room here; the room's last local socket stops the listening. */
  drop(conn: Conn, room: string): void {
    conn.room = null;
    const k = conn.slice;
    if (k >= 0) {
      const slices = this.slices;
      // What was sent to the room before it left still reaches it.
      if (k > 0 && slices.pending > 0 && conn.ws !== null) slices.flush();
      conn.ws?.unsubscribe(slices.topic(conn.format, room, k));
      slices.release(conn.format, room, k);
      conn.slice = -1;
    }
    if (conn.ws !== null && conn.presence) conn.ws.unsubscribe(presenceTopic(conn.format, room));
    conn.presence = false;
    const local = this.rooms.get(room);
    if (local?.conns.delete(conn) && local.conns.size === 0) {
      this.rooms.delete(room);
      this.unlisten(room);
    }
  }

  /** Moves every local socket out of a room (closed); returns them. */
  dropAll(room: string): Conn[] {
    const local = this.rooms.get(room);
    if (local === undefined) return [];
    const conns = [...local.conns];
    for (const conn of conns) this.drop(conn, room);
    return conns;
  }

  /** Rooms with at least one socket here. */
  get size(): number {
    return this.rooms.size;
  }

  /** Rooms with local sockets, and the sockets in them (each counted once per room). */
  sizes(): { rooms: number; members: number } {
    let members = 0;
    for (const local of this.rooms.values()) members += local.conns.size;
    return { rooms: this.rooms.size, members };
  }

  has(room: string): boolean {
    return this.rooms.has(room);
  }

  /** Every room with local sockets: what the registry said of it, and its sockets here. */
  *entries(): IterableIterator<[Omit<RoomInfo, "members">, ReadonlySet<Conn>]> {
    for (const local of this.rooms.values()) yield [local.info, local.conns];
  }
}
