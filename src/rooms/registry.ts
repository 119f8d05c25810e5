// The room registry: which rooms exist, who created them, how many sockets are in each.
// One interface, one implementation per backend — memory (one node, `memory.ts`) and Redis
// (cluster mode, `redis.ts`: every node sees the same rooms, counts and limits) — and one contract
// test suite (test/contract/room-registry.ts, run by test/room-registry.contract.test.ts) against
// every one.
//
// Members are socket keys, `${nodeId}:${connId}` (a node id has no ':'). `purgeNode(nodeId)`
// drops every member of one node at once: a node that died without saying goodbye leaves its
// sockets in the counts until another node purges them. Rooms left empty by leave or purgeNode
// start their empty-room timer; `sweep` removes rooms empty for the TTL.
//
// In cluster mode every method is one atomic step on Redis (two nodes racing to create one name:
// one wins; the limits hold cluster-wide; a room is swept or closed once). While Redis is
// unreachable a method rejects (RegistryUnavailableError) instead of waiting: the handler wrapper
// answers `unavailable`.

export interface RoomInfo {
  name: string;
  /** User id of the creator. */
  creator: string;
  /** Creation time, ms since the epoch. */
  createdAt: number;
  /** Sockets in the room now. */
  members: number;
}

export interface RoomLimits {
  maxRooms: number;
  maxRoomsPerUser: number;
}

export type CreateResult =
  | { ok: true; room: RoomInfo }
  | { ok: false; error: "room_exists" | "max_rooms" | "max_rooms_per_user" };

export type CloseResult =
  | { ok: true; room: RoomInfo }
  | { ok: false; error: "room_not_found" | "not_room_creator" };

/** The registry's backend (Redis) cannot be reached or did not answer in time. */
export class RegistryUnavailableError extends Error {
  override readonly name = "RegistryUnavailableError";
  constructor(message = "The room registry is unavailable", options?: { cause?: unknown }) {
    super(message, options);
  }
}

export interface RoomRegistry {
  /** Creates a room; `room_exists` is checked before the limits. Creating does not join. */
  create(name: string, creator: string, now: number): Promise<CreateResult>;
  /** Adds a member (a socket key); undefined when the room does not exist. Idempotent per member. */
  join(name: string, member: string, now: number): Promise<RoomInfo | undefined>;
  /**
   * Puts a member back after the registry lost it (Redis restarted empty, or this node was taken
   * for dead): joins, and first re-creates the room as it was (creator, creation time; no limit
   * check: it existed) when it is gone. Returns the room with its member count.
   */
  rejoin(room: Omit<RoomInfo, "members">, member: string, now: number): Promise<RoomInfo>;
  /** Removes a member; a room left empty starts its empty-room timer. */
  leave(name: string, member: string, now: number): Promise<void>;
  /** Removes the room if `by` created it; its members are dropped and the creator's slot freed. */
  close(name: string, by: string): Promise<CloseResult>;
  get(name: string): Promise<RoomInfo | undefined>;
  /** Every room, oldest first. */
  list(): Promise<RoomInfo[]>;
  /** Removes rooms empty for at least `ttlMs`; returns their names (in no set order). */
  sweep(now: number, ttlMs: number): Promise<string[]>;
  /**
   * Removes every member whose key starts with `${nodeId}:` from every room (the sockets of a
   * node that died); rooms left empty start their empty-room timer at `now`. Returns how many
   * members were removed.
   */
  purgeNode(nodeId: string, now: number): Promise<number>;
  /** Entry counts of the in-process maps behind this part (operators' `GET /ws/internals`); cheap. */
  sizes?(): Record<string, number>;
  dispose(): Promise<void>;
}
