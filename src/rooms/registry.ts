// The room registry: which rooms exist, who created them, how many sockets are in each.
// One interface, one implementation per backend (memory now; Redis with the cluster work),
// and one contract test suite (test/room-registry.contract.test.ts) run against every one.

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

export interface RoomRegistry {
  /** Creates a room; `room_exists` is checked before the limits. Creating does not join. */
  create(name: string, creator: string, now: number): Promise<CreateResult>;
  /** Adds a member (a socket key); undefined when the room does not exist. Idempotent per member. */
  join(name: string, member: string, now: number): Promise<RoomInfo | undefined>;
  /** Removes a member; a room left empty starts its empty-room timer. */
  leave(name: string, member: string, now: number): Promise<void>;
  /** Removes the room if `by` created it; its members are dropped and the creator's slot freed. */
  close(name: string, by: string): Promise<CloseResult>;
  get(name: string): Promise<RoomInfo | undefined>;
  /** Every room, oldest first. */
  list(): Promise<RoomInfo[]>;
  /** Removes rooms empty for at least `ttlMs`; returns their names. */
  sweep(now: number, ttlMs: number): Promise<string[]>;
  dispose(): Promise<void>;
}
