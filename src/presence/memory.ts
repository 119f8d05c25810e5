// In-process presence: one node (the embedded default), nodes sharing one process (tests), and
// the contract's reference. add and remove are O(1); purgeNode walks one node's index only.
import {
  byRoomThenUser,
  byUser,
  type Presence,
  type PresenceLeave,
  type PresenceUser,
} from "./presence.ts";

interface RoomPresence {
  /** member → user id */
  members: Map<string, string>;
  /** user id → sockets in the room (entry gone at 0) */
  users: Map<string, number>;
}

/**
 * The index key of a member: the text before its first ':' (undefined without one: such a member
 * belongs to no node and no purge matches it). A node id may itself hold ':', so a purge checks
 * the whole `${nodeId}:` head of each member under this key — as the Redis implementation does.
 */
function nodeKey(member: string): string | undefined {
  const c = member.indexOf(":");
  return c < 0 ? undefined : member.slice(0, c);
}

export class MemoryPresence implements Presence {
  private readonly rooms = new Map<string, RoomPresence>();
  /** node key → room → that node's members in the room (entries gone when empty) */
  private readonly nodes = new Map<string, Map<string, Set<string>>>();

  sizes(): Record<string, number> {
    let members = 0;
    for (const r of this.rooms.values()) members += r.members.size;
    return { rooms: this.rooms.size, members, nodes: this.nodes.size };
  }

  async add(room: string, userId: string, member: string): Promise<boolean> {
    let r = this.rooms.get(room);
    if (r === undefined) {
      r = { members: new Map(), users: new Map() };
      this.rooms.set(room, r);
    }
    if (r.members.has(member)) return false;
    r.members.set(member, userId);
    this.index(room, member);
    const n = (r.users.get(userId) ?? 0) + 1;
    r.users.set(userId, n);
    return n === 1;
  }

  async remove(room: string, _userId: string, member: string): Promise<boolean> {
    const r = this.rooms.get(room);
    if (r === undefined || !r.members.has(member)) return false;
    this.unindex(room, member);
    return this.release(room, r, member) !== undefined;
  }

  async list(room: string): Promise<PresenceUser[]> {
    const r = this.rooms.get(room);
    if (r === undefined) return [];
    return [...r.users].map(([user_id, connections]) => ({ user_id, connections })).sort(byUser);
  }

  async purgeNode(nodeId: string): Promise<PresenceLeave[]> {
    const head = `${nodeId}:`;
    const key = nodeKey(head) as string;
    const perRoom = this.nodes.get(key);
    if (perRoom === undefined) return [];
    const leaves: PresenceLeave[] = [];
    for (const [room, members] of perRoom) {
      const r = this.rooms.get(room);
      for (const member of members) {
        if (!member.startsWith(head)) continue;
        members.delete(member);
        const user = r === undefined ? undefined : this.release(room, r, member);
        if (user !== undefined) leaves.push({ room, user_id: user });
      }
      if (members.size === 0) perRoom.delete(room);
    }
    if (perRoom.size === 0) this.nodes.delete(key);
    return leaves.sort(byRoomThenUser);
  }

  async drop(room: string): Promise<void> {
    const r = this.rooms.get(room);
    if (r === undefined) return;
    for (const member of r.members.keys()) this.unindex(room, member);
    this.rooms.delete(room);
  }

  async dispose(): Promise<void> {
    this.rooms.clear();
    this.nodes.clear();
  }

  /** Forgets `member` of `r` (already unindexed); its user id when that was the user's last. */
  private release(room: string, r: RoomPresence, member: string): string | undefined {
    const user = r.members.get(member);
    if (user === undefined) return undefined;
    r.members.delete(member);
    const n = (r.users.get(user) ?? 1) - 1;
    if (n > 0) r.users.set(user, n);
    else r.users.delete(user);
    if (r.members.size === 0) this.rooms.delete(room);
    return n > 0 ? undefined : user;
  }

  private index(room: string, member: string): void {
    const key = nodeKey(member);
    if (key === undefined) return;
    let perRoom = this.nodes.get(key);
    if (perRoom === undefined) {
      perRoom = new Map();
      this.nodes.set(key, perRoom);
    }
    let members = perRoom.get(room);
    if (members === undefined) {
      members = new Set();
      perRoom.set(room, members);
    }
    members.add(member);
  }

  private unindex(room: string, member: string): void {
    const key = nodeKey(member);
    if (key === undefined) return;
    const perRoom = this.nodes.get(key);
    const members = perRoom?.get(room);
    if (perRoom === undefined || members === undefined) return;
    members.delete(member);
    if (members.size > 0) return;
    perRoom.delete(room);
    if (perRoom.size === 0) this.nodes.delete(key);
  }
}
