// In-process room registry: the embedded default (one node).
import type { CloseResult, CreateResult, RoomInfo, RoomLimits, RoomRegistry } from "./registry.ts";

interface Entry {
  name: string;
  creator: string;
  createdAt: number;
  members: Set<string>;
  /** When the room last became empty; null while it has members. */
  emptySince: number | null;
}

const info = (e: Entry): RoomInfo => ({
  name: e.name,
  creator: e.creator,
  createdAt: e.createdAt,
  members: e.members.size,
});

export class MemoryRoomRegistry implements RoomRegistry {
  /** Insertion order is creation order: `list()` is oldest first for free. */
  private readonly rooms = new Map<string, Entry>();
  private readonly createdBy = new Map<string, number>();

  constructor(private readonly limits: RoomLimits) {}

  sizes(): Record<string, number> {
    let members = 0;
    for (const entry of this.rooms.values()) members += entry.members.size;
    return { rooms: this.rooms.size, creators: this.createdBy.size, members };
  }

  async create(name: string, creator: string, now: number): Promise<CreateResult> {
    if (this.rooms.has(name)) return { ok: false, error: "room_exists" };
    if (this.rooms.size >= this.limits.maxRooms) return { ok: false, error: "max_rooms" };
    const mine = this.createdBy.get(creator) ?? 0;
    if (mine >= this.limits.maxRoomsPerUser) return { ok: false, error: "max_rooms_per_user" };
    const entry: Entry = { name, creator, createdAt: now, members: new Set(), emptySince: now };
    this.rooms.set(name, entry);
    this.createdBy.set(creator, mine + 1);
    return { ok: true, room: info(entry) };
  }

  async join(name: string, member: string, _now: number): Promise<RoomInfo | undefined> {
    const entry = this.rooms.get(name);
    if (!entry) return undefined;
    entry.members.add(member);
    entry.emptySince = null;
    return info(entry);
  }

  async rejoin(room: Omit<RoomInfo, "members">, member: string, now: number): Promise<RoomInfo> {
    if (!this.rooms.has(room.name)) {
      const entry: Entry = { ...room, members: new Set(), emptySince: now };
      this.rooms.set(room.name, entry);
      this.createdBy.set(room.creator, (this.createdBy.get(room.creator) ?? 0) + 1);
    }
    return (await this.join(room.name, member, now)) as RoomInfo;
  }

  async leave(name: string, member: string, now: number): Promise<void> {
    const entry = this.rooms.get(name);
    if (!entry?.members.delete(member)) return;
    if (entry.members.size === 0) entry.emptySince = now;
  }

  async close(name: string, by: string): Promise<CloseResult> {
    const entry = this.rooms.get(name);
    if (!entry) return { ok: false, error: "room_not_found" };
    if (entry.creator !== by) return { ok: false, error: "not_room_creator" };
    const room = info(entry);
    this.remove(entry);
    return { ok: true, room };
  }

  async get(name: string): Promise<RoomInfo | undefined> {
    const entry = this.rooms.get(name);
    return entry && info(entry);
  }

  async list(): Promise<RoomInfo[]> {
    return Array.from(this.rooms.values(), info);
  }

  async sweep(now: number, ttlMs: number): Promise<string[]> {
    const removed: string[] = [];
    for (const entry of this.rooms.values()) {
      if (entry.emptySince !== null && now - entry.emptySince >= ttlMs) {
        this.remove(entry);
        removed.push(entry.name);
      }
    }
    return removed;
  }

  async purgeNode(nodeId: string, now: number): Promise<number> {
    const head = `${nodeId}:`;
    let removed = 0;
    for (const entry of this.rooms.values()) {
      const before = entry.members.size;
      for (const member of entry.members) if (member.startsWith(head)) entry.members.delete(member);
      if (entry.members.size === before) continue;
      removed += before - entry.members.size;
      if (entry.members.size === 0) entry.emptySince = now;
    }
    return removed;
  }

  async dispose(): Promise<void> {
    this.rooms.clear();
    this.createdBy.clear();
  }

  private remove(entry: Entry): void {
    this.rooms.delete(entry.name);
    const left = (this.createdBy.get(entry.creator) ?? 1) - 1;
    if (left > 0) this.createdBy.set(entry.creator, left);
    else this.createdBy.delete(entry.creator);
  }
}
