// The node's live state and its fan-out: which sockets each user has (with the user's shared
// rate-limit bucket; direct messages go to these sockets), which local sockets sit in each room,
// token expiry, and publishing to Bun topics. Shared state (rooms) lives in the RoomRegistry
// behind its interface.
import type { Server } from "bun";
import type { Config } from "../config.ts";
import { errorText, type Logger } from "../log.ts";
import {
  type ChatMessage,
  events,
  FORMATS,
  type Format,
  isoTime,
  messageFrames,
  type Rendered,
  type RoomSummary,
  renderBroadcast,
  renderDirect,
} from "../protocol.ts";
import { TokenBucket } from "../rate-limit.ts";
import type { RoomInfo, RoomRegistry } from "../rooms/registry.ts";
import type { UserStore } from "../users/store.ts";
import { Conn, type Socket } from "./connection.ts";
import type { Handlers } from "./handler.ts";
import { allTopic, roomTopic } from "./topics.ts";

export interface UserSlot {
  bucket: TokenBucket;
  conns: Set<Conn>;
}

export const roomSummary = (r: RoomInfo): RoomSummary => ({
  name: r.name,
  creator: r.creator,
  members: r.members,
  created_at: isoTime(r.createdAt),
});

export const CLOSE = {
  policy: 1008,
  goingAway: 1001,
} as const;

export class Hub {
  server: Server<Conn> | null = null;
  readonly nodeId = crypto.randomUUID().slice(0, 8);
  /** Live sockets. */
  connections = 0;
  private nextId = 1;
  private readonly slots = new Map<string, UserSlot>();
  private readonly roomMembers = new Map<string, Set<Conn>>();
  /** Earliest token expiry (seconds) among live sockets, or later: nothing expires before it. */
  private nextExpiry = Number.POSITIVE_INFINITY;
  private timer: ReturnType<typeof setInterval> | null = null;
  private lastSweep = 0;
  private lastEvict = 0;
  private readonly refillPerMs: number;

  constructor(
    readonly config: Config,
    readonly log: Logger,
    readonly registry: RoomRegistry,
    readonly users: UserStore,
    readonly handlers: Handlers,
  ) {
    this.refillPerMs = config.rateLimitRefillPerSecond / 1000;
  }

  /** The `ws.data` of an accepted socket. */
  accept(userId: string, format: Format, exp: number): Conn {
    return new Conn(this, this.nextId++, userId, format, exp);
  }

  /** The `ws.data` of a socket to close with 1008 right after the upgrade. */
  refuse(reason: string): Conn {
    return new Conn(this, 0, "", "json", 0, reason);
  }

  start(): void {
    const tick = Math.min(1000, Math.max(50, this.config.roomEmptyTtlSeconds * 250));
    this.timer = setInterval(() => this.maintain(Date.now()), tick);
    this.timer.unref?.();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  // ---------------------------------------------------------------- lifecycle

  open(conn: Conn, ws: Socket): void {
    if (conn.reject !== null) {
      ws.close(CLOSE.policy, conn.reject);
      return;
    }
    let slot = this.slots.get(conn.userId);
    if (slot === undefined) {
      slot = {
        bucket: new TokenBucket(this.config.rateLimitCapacity, this.refillPerMs, Date.now()),
        conns: new Set(),
      };
      this.slots.set(conn.userId, slot);
    }
    if (slot.conns.size >= this.config.maxConnectionsPerUser) {
      this.log.warn("connection refused", { user: conn.userId, cause: "too many connections" });
      ws.close(CLOSE.policy, "Too many connections");
      return;
    }
    conn.ws = ws;
    conn.slot = slot;
    slot.conns.add(conn);
    ws.subscribe(allTopic(conn.format));
    if (conn.exp < this.nextExpiry) this.nextExpiry = conn.exp;
    this.connections++;
    this.log.info("connect", {
      user: conn.userId,
      conn: conn.id,
      format: conn.format,
      connections: this.connections,
    });
    conn.send(events.welcome(conn.userId));
  }

  close(conn: Conn): void {
    const slot = conn.slot;
    if (slot === null || conn.ws === null) return;
    if (conn.room !== null) {
      this.leaveRoom(conn).catch((e) =>
        this.log.error("leave on disconnect failed", { error: errorText(e) }),
      );
    }
    conn.ws = null;
    conn.pending = null;
    conn.busy = false;
    slot.conns.delete(conn);
    this.connections--;
    this.log.info("disconnect", {
      user: conn.userId,
      conn: conn.id,
      connections: this.connections,
    });
  }

  /** Closes every socket of one user (deactivated or deleted). */
  kickUser(userId: string, reason: string): number {
    const slot = this.slots.get(userId);
    if (!slot) return 0;
    const conns = [...slot.conns];
    for (const conn of conns) conn.ws?.close(CLOSE.policy, reason);
    return conns.length;
  }

  /** Closes every socket (shutdown). */
  closeAll(code: number, reason: string): void {
    for (const slot of this.slots.values())
      for (const conn of [...slot.conns]) conn.ws?.close(code, reason);
  }

  isOnline(userId: string): boolean {
    const slot = this.slots.get(userId);
    return slot !== undefined && slot.conns.size > 0;
  }

  // ---------------------------------------------------------------- rooms

  /** Puts a socket in a room it already joined in the registry; false if it closed meanwhile. */
  enterRoom(conn: Conn, room: string): boolean {
    if (conn.ws === null) {
      this.registry
        .leave(room, conn.key, Date.now())
        .catch((e) => this.log.error("leave after close failed", { error: errorText(e) }));
      return false;
    }
    conn.room = room;
    conn.ws.subscribe(roomTopic(conn.format, room));
    let members = this.roomMembers.get(room);
    if (members === undefined) {
      members = new Set();
      this.roomMembers.set(room, members);
    }
    members.add(conn);
    return true;
  }

  /** Takes a socket out of its current room, here and in the registry. */
  async leaveRoom(conn: Conn): Promise<void> {
    const room = conn.room;
    if (room === null) return;
    this.dropLocal(conn, room);
    await this.registry.leave(room, conn.key, Date.now());
  }

  private dropLocal(conn: Conn, room: string): void {
    conn.room = null;
    if (conn.ws !== null) conn.ws.unsubscribe(roomTopic(conn.format, room));
    const members = this.roomMembers.get(room);
    if (members) {
      members.delete(conn);
      if (members.size === 0) this.roomMembers.delete(room);
    }
  }

  /** After the registry closed a room: tell its members and move them out. */
  roomClosed(room: string, by: string, closer: Conn | null): void {
    const closerInside = closer !== null && closer.room === room;
    if (closer) closer.send(events.roomClosedToCloser(room, by));
    this.publishRoom(room, events.roomClosedToMembers(room, by), closer);
    const update = events.roomUpdate(null);
    this.publishRoom(room, update, closerInside ? null : closer);
    const members = this.roomMembers.get(room);
    if (members) for (const conn of [...members]) this.dropLocal(conn, room);
  }

  // ---------------------------------------------------------------- fan-out

  /** Publishes one event to a room in both formats, skipping `except` (its own socket). */
  private publishRoom(room: string, event: Rendered, except: Conn | null): void {
    for (const format of FORMATS)
      this.publishTopic(roomTopic(format, room), format, event[format], except);
  }

  private publishTopic(topic: string, format: Format, payload: string, except: Conn | null): void {
    if (except !== null && except.format === format && except.ws !== null)
      except.ws.publish(topic, payload);
    else this.server?.publish(topic, payload);
  }

  sendToRoom(from: Conn, room: string, content: string): void {
    const server = this.server;
    if (server === null) return;
    const m: ChatMessage = {
      id: Bun.randomUUIDv7(),
      room,
      from: from.userId,
      content,
      sent_at: new Date().toISOString(),
    };
    const json = roomTopic("json", room);
    const text = roomTopic("text", room);
    // JSON: the echo is the same frame, so a JSON sender gets it from the topic.
    if (server.subscriberCount(json) > 0) server.publish(json, messageFrames.json(m));
    if (from.format === "text") {
      from.ws?.send(messageFrames.self(m));
      if (server.subscriberCount(text) > 1) from.ws?.publish(text, messageFrames.others(m));
    } else if (server.subscriberCount(text) > 0) {
      server.publish(text, messageFrames.others(m));
    }
  }

  sendDirect(from: Conn, to: string, content: string): void {
    const m = renderDirect({
      id: Bun.randomUUIDv7(),
      from: from.userId,
      to,
      content,
      sent_at: new Date().toISOString(),
    });
    // A user's few sockets on this node are in its slot: no topic per user to keep.
    const slot = this.slots.get(to);
    if (slot !== undefined)
      for (const conn of slot.conns) conn.ws?.send(conn.format === "json" ? m.json : m.recipient);
    from.ws?.send(from.format === "json" ? m.json : m.sender);
  }

  broadcast(from: string, content: string): string {
    const id = Bun.randomUUIDv7();
    const m = renderBroadcast({ id, from, content, sent_at: new Date().toISOString() });
    for (const format of FORMATS) this.server?.publish(allTopic(format), m[format]);
    return id;
  }

  // ---------------------------------------------------------------- upkeep

  /** Token expiry, empty-room removal, idle rate-limit buckets. Cheap when there is nothing to do. */
  maintain(now: number): void {
    if (now / 1000 >= this.nextExpiry) this.expireTokens(now / 1000);
    const ttlMs = this.config.roomEmptyTtlSeconds * 1000;
    if (now - this.lastSweep >= Math.min(ttlMs / 4, 1000)) {
      this.lastSweep = now;
      this.registry
        .sweep(now, ttlMs)
        .then((removed) => {
          for (const room of removed) this.log.info("room removed (empty)", { room });
        })
        .catch((e) => this.log.error("room sweep failed", { error: errorText(e) }));
    }
    if (now - this.lastEvict >= 10_000) {
      this.lastEvict = now;
      for (const [userId, slot] of this.slots)
        if (slot.conns.size === 0 && slot.bucket.isFull(now)) this.slots.delete(userId);
    }
  }

  /**
   * Closes the sockets whose token has expired. One pass over the live sockets, run only when the
   * earliest expiry is due (tokens live for days), instead of an expiry index kept per socket.
   */
  private expireTokens(nowSeconds: number): void {
    let next = Number.POSITIVE_INFINITY;
    for (const slot of this.slots.values()) {
      for (const conn of [...slot.conns]) {
        if (conn.exp > nowSeconds) {
          if (conn.exp < next) next = conn.exp;
          continue;
        }
        this.log.info("token expired", { user: conn.userId, conn: conn.id });
        conn.ws?.close(CLOSE.policy, "Token expired");
      }
    }
    this.nextExpiry = next;
  }

  /** Number of per-user slots kept (live users plus users with a partly used bucket). */
  get slotCount(): number {
    return this.slots.size;
  }
}
