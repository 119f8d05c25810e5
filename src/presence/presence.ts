// Presence: who is in each room, per user, cluster-wide — what the `presence` command lists and
// what decides when a `presence_join` / `presence_leave` is due (a user's first socket entering a
// room / last socket leaving it; a second tab makes no event). One interface, a memory and a
// Redis implementation (memory.ts, redis.ts), one contract suite (test/contract/presence.ts).
//
// A socket is a member key `${nodeId}:${connId}`, as in the room registry. Entries do not expire
// on a timer: a node that dies is claimed by one survivor (cluster/heartbeat.ts), which calls
// `purgeNode` and sends the leaves it returns; a node that finds itself lost from the directory
// purges itself and adds its sockets again (`add` is idempotent per member).

export interface PresenceUser {
  user_id: string;
  /** The user's sockets in the room, on every node. */
  connections: number;
}

/** A user's last socket in a room is gone: a presence_leave is due. */
export interface PresenceLeave {
  room: string;
  user_id: string;
}

export interface Presence {
  /**
   * A socket (member key `${nodeId}:${connId}`) of `userId` entered `room`. True when it is the
   * user's first socket in the room (cluster-wide): a presence_join is due. Idempotent per member
   * (a second add of the same member returns false and counts nothing, whatever its user id).
   */
  add(room: string, userId: string, member: string): Promise<boolean>;
  /**
   * The socket left. True when it was the user's last socket in the room: a presence_leave is
   * due. Removing an absent member returns false. The member counts against the user it was
   * added with (a socket has one user; `userId` is the caller's, for symmetry with `add`).
   */
  remove(room: string, userId: string, member: string): Promise<boolean>;
  /** Users in the room with their socket counts, in user id order; [] for an unknown room. */
  list(room: string): Promise<PresenceUser[]>;
  /**
   * Removes every member of node `nodeId` (members starting with `${nodeId}:`): a dead node, or
   * this node after the backend lost it / at graceful stop. Returns the (room, user) pairs whose
   * last socket that was — the presence_leave events due — in room, then user id order.
   * Idempotent: a second purge returns []. One step over a per-node index, not a scan.
   */
  purgeNode(nodeId: string): Promise<PresenceLeave[]>;
  /** The room is gone (closed or removed): forget its presence (no leaves are due). */
  drop(room: string): Promise<void>;
  /** Entry counts of the in-process maps behind this part (operators' `GET /ws/internals`); cheap. */
  sizes?(): Record<string, number>;
  dispose(): Promise<void>;
}

/** Code-unit order, the same in every implementation (not locale order). */
export const compareIds = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);

export const byUser = (a: PresenceUser, b: PresenceUser): number =>
  compareIds(a.user_id, b.user_id);

export const byRoomThenUser = (a: PresenceLeave, b: PresenceLeave): number =>
  compareIds(a.room, b.room) || compareIds(a.user_id, b.user_id);
