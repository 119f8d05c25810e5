// The node: composes what each socket touches, one concern per file — user sessions and buckets
// (sessions.ts), local room membership (membership.ts), fan-out to local sockets (fanout.ts),
// upkeep timers (upkeep.ts) — with the shared parts behind their interfaces: rooms in the
// RoomRegistry, other nodes through the Broker. Handlers call only the methods below.
import type { Server } from "bun";
import type { Broker, Envelope } from "../cluster/broker.ts";
import { Heartbeat } from "../cluster/heartbeat.ts";
import { LeasedBucket } from "../cluster/leases.ts";
import type { NodeDirectory, NodeInfo } from "../cluster/nodes.ts";
import type { ClusterParts } from "../cluster/open.ts";
import type { Config } from "../config.ts";
import type { History, Position } from "../history/history.ts";
import { errorText, type Logger } from "../log.ts";
import { type CommandMetrics, Metrics, VERSION } from "../metrics/metrics.ts";
import type { Presence } from "../presence/presence.ts";
import {
  type BroadcastMessage,
  type ChatMessage,
  type DirectMessage,
  errors,
  events,
  type Format,
  isoTime,
  type Rendered,
  type RoomSummary,
} from "../protocol.ts";
import type { RoomInfo, RoomRegistry } from "../rooms/registry.ts";
import type { UserStore } from "../users/store.ts";
import { Conn, type Socket } from "./connection.ts";
import { EchoWaits } from "./echo-waits.ts";
import { Fanout } from "./fanout.ts";
import type { Handler, Handlers } from "./handler.ts";
import { Heard } from "./heard.ts";
import { Membership } from "./membership.ts";
import { type Entered, entered, type Joining } from "./recovery.ts";
import { CLOSE, Sessions } from "./sessions.ts";
import { Slices } from "./slices.ts";
import { allTopic } from "./topics.ts";
import { Upkeep } from "./upkeep.ts";

export type { UserSlot } from "./sessions.ts";
export { CLOSE } from "./sessions.ts";

/** Cluster: how long after Redis's answer a sender waits at most for its echo to come back. */
const ECHO_WAIT_MS = 2_000;
/** Cluster: how long a join waits at most for the room's messages its read counted (heard.ts). */
const SYNC_WAIT_MS = 1_000;

/** A command type's handler with its counters, resolved once per type (connection.ts dispatch). */
export interface Command extends CommandMetrics {
  handler: Handler;
}

export const roomSummary = (r: RoomInfo): RoomSummary => ({
  name: r.name,
  creator: r.creator,
  members: r.members,
  created_at: isoTime(r.createdAt),
});

export class Hub {
  readonly nodeId: string;
  /** True when the broker reaches other nodes: rooms and users are shared. */
  readonly clustered: boolean;
  readonly sessions: Sessions;
  readonly membership: Membership;
  readonly fanout: Fanout;
  readonly upkeep: Upkeep;
  readonly registry: RoomRegistry;
  readonly broker: Broker;
  /** Cluster mode: live nodes and per-user socket counts; null on one node. */
  readonly nodes: NodeDirectory | null;
  private readonly heartbeat: Heartbeat | null;
  readonly history: History;
  readonly presence: Presence;
  /** This node's metrics (`GET /metrics`). */
  readonly metrics: Metrics;
  /** Command type → handler and counters; filled from `handlers` (a type added later on first use). */
  private readonly commands = new Map<string, Command>();
  /** Joins in progress, by room: what arrives for the room while its history is read. */
  private readonly joining = new Map<string, Set<Joining>>();
  /** Cluster mode: this node's room messages until they come back in the room's order. */
  private readonly echoWaits = new EchoWaits(ECHO_WAIT_MS);
  private readonly heard = new Heard();
  private readonly slices: Slices;
  private nextId = 1;

  constructor(
    readonly config: Config,
    readonly log: Logger,
    readonly users: UserStore,
    readonly handlers: Handlers,
    shared: Omit<ClusterParts, "close">,
  ) {
    const { registry, broker, nodes, leases, history, presence } = shared;
    this.registry = registry;
    this.history = history;
    this.presence = presence;
    this.broker = broker;
    this.nodes = nodes;
    this.nodeId = broker.nodeId;
    this.clustered = broker.state !== "off";
    const capacity = config.rateLimitCapacity;
    const refill = config.rateLimitRefillPerSecond;
    const batch = Math.max(1, Math.min(50, Math.ceil(capacity / 10)));
    this.sessions = new Sessions(
      config,
      log,
      leases === null
        ? undefined
        : (userId, local) => new LeasedBucket(userId, leases, capacity, refill, batch, local),
    );
    this.metrics = new Metrics({
      version: VERSION,
      nodeId: this.nodeId,
      connections: () => this.sessions.connections,
      rooms: () => this.membership.size,
      redisUp: () => (this.clustered ? (broker.state === "up" ? 1 : 0) : null),
    });
    for (const type of handlers.keys()) this.command(type);
    this.slices = new Slices(config.roomFanoutSlice);
    this.fanout = new Fanout(this.sessions, this.metrics.framesOut, this.slices);
    this.upkeep = new Upkeep(config, log, this.sessions, registry, history);
    this.membership = new Membership(
      (room) => (this.clustered ? this.listen(room) : null),
      (room) => {
        this.heard.forget(room);
        if (this.clustered) this.broker.unsubscribeRoom(room).catch(() => {});
      },
      this.slices,
    );
    broker.onEnvelope((envelope, fromNode) => this.receive(envelope, fromNode));
    // Redis is back: beat now rather than at the next tick (a restarted Redis has lost this
    // node's state, which the beat notices and records again).
    broker.onRestore(() => {
      this.heartbeat?.beat(Date.now());
    });
    this.heartbeat =
      nodes === null
        ? null
        : new Heartbeat(
            {
              nodeId: this.nodeId,
              connections: () => this.sessions.connections,
              resync: () => this.resync(),
              dead: (nodeId) => this.nodeDead(nodeId),
            },
            nodes,
            registry,
            log,
            config.nodeTtlSeconds * 1000,
          );
  }

  get server(): Server<Conn> | null {
    return this.fanout.server;
  }

  set server(server: Server<Conn> | null) {
    this.fanout.server = server;
  }

  /** Live sockets on this node. */
  get connections(): number {
    return this.sessions.connections;
  }

  /** The handler of a command type with its counters; undefined when no handler has the type. */
  command(type: string): Command | undefined {
    const known = this.commands.get(type);
    if (known !== undefined) return known;
    const handler = this.handlers.get(type);
    if (handler === undefined) return undefined;
    const command: Command = { handler, ...this.metrics.command(type) };
    this.commands.set(type, command);
    return command;
  }

  /** The `ws.data` of an accepted socket. */
  accept(userId: string, format: Format, exp: number): Conn {
    return new Conn(this, this.nextId++, userId, format, exp);
  }

  /** The `ws.data` of a socket to close with 1008 right after the upgrade. */
  refuse(reason: string): Conn {
    return new Conn(this, 0, "", "json", 0, reason);
  }

  /** Cluster mode: the first heartbeat, so the node is listed before it takes sockets. */
  async joinCluster(): Promise<void> {
    await this.heartbeat?.beat(Date.now());
  }

  /** Starts the upkeep timers (and heartbeats in cluster mode). */
  start(): void {
    this.metrics.start();
    this.upkeep.start();
    this.heartbeat?.start();
  }

  stop(): void {
    this.metrics.stop();
    this.upkeep.stop();
    this.heartbeat?.stop();
  }

  /** Graceful stop in cluster mode: this node's sockets leave every count at once. */
  async leaveCluster(): Promise<void> {
    if (this.nodes === null) return;
    await this.registry.purgeNode(this.nodeId, Date.now());
    await this.nodeDead(this.nodeId);
    await this.nodes.bury(this.nodeId);
  }

  /** Live nodes with their socket counts (this node's own count is live); one node: itself. */
  async nodeList(): Promise<NodeInfo[]> {
    const self = { id: this.nodeId, connections: this.sessions.connections };
    if (this.nodes === null) return [self];
    const live = await this.nodes.live(Date.now());
    return [self, ...live.filter((n) => n.id !== this.nodeId)].sort((a, b) =>
      a.id < b.id ? -1 : a.id > b.id ? 1 : 0,
    );
  }

  /** The whole upkeep at a chosen time (token expiry, empty rooms, idle buckets). */
  maintain(now: number): void {
    this.upkeep.run(now);
  }

  /** Number of per-user slots kept (live users plus users with a partly used bucket). */
  get slotCount(): number {
    return this.sessions.size;
  }

  /**
   * How big this node's in-process state is: the entry counts of every map and set it keeps
   * (sessions, local rooms, joins in progress, the shared parts' local maps). For operators
   * (`GET /api/v1/ws/internals`) and the soak run (a leak shows as a count that only grows);
   * one pass over the rooms, nothing on the message path.
   */
  internals(): Record<string, Record<string, number>> {
    let joins = 0;
    for (const set of this.joining.values()) joins += set.size;
    const local = this.membership.sizes();
    const out: Record<string, Record<string, number>> = {
      hub: {
        connections: this.sessions.connections,
        user_slots: this.sessions.size,
        local_rooms: local.rooms,
        local_members: local.members,
        joining_rooms: this.joining.size,
        joining_sockets: joins,
        after_echo: this.echoWaits.size,
        heard_rooms: this.heard.size,
        slicer_rooms: this.slices.tracked,
        slices_queued: this.slices.pending,
      },
    };
    const parts = {
      registry: this.registry,
      history: this.history,
      presence: this.presence,
      broker: this.broker,
      users: this.users,
    };
    for (const [name, part] of Object.entries(parts)) {
      const sizes = part.sizes?.();
      if (sizes !== undefined) out[name] = sizes;
    }
    return out;
  }

  // ---------------------------------------------------------------- lifecycle

  open(conn: Conn, ws: Socket): void {
    if (conn.reject !== null) {
      ws.close(CLOSE.policy, conn.reject);
      return;
    }
    if (!this.sessions.add(conn, Date.now())) {
      this.log.warn("connection refused", { user: conn.userId, cause: "too many connections" });
      ws.close(CLOSE.policy, "Too many connections");
      return;
    }
    conn.ws = ws;
    ws.subscribe(allTopic(conn.format));
    if (this.log.enabled("debug"))
      this.log.debug("connect", {
        user: conn.userId,
        conn: conn.id,
        format: conn.format,
        connections: this.sessions.connections,
      });
    if (!this.clustered) {
      conn.send(events.welcome(conn.userId));
      return;
    }
    this.admit(conn).then((ok) => {
      if (ok) conn.send(events.welcome(conn.userId));
      else {
        this.log.warn("connection refused", { user: conn.userId, cause: "too many connections" });
        conn.ws?.close(CLOSE.policy, "Too many connections");
      }
    });
  }

  /**
   * Cluster mode, before the welcome: the user's socket limit, counted cluster-wide, and (for the
   * user's first socket here) the user's channel, so a direct message sent from another node
   * right after the welcome is not missed. With Redis out of reach only this node's limit holds.
   */
  private async admit(conn: Conn): Promise<boolean> {
    const listening =
      conn.slot?.conns.size === 1
        ? this.broker.subscribeUser(conn.userId).catch((e) =>
            this.log.warn("user channel not subscribed", {
              user: conn.userId,
              error: errorText(e),
            }),
          )
        : undefined;
    let ok = true;
    if (this.nodes !== null) {
      try {
        ok = await this.nodes.addConnection(
          conn.userId,
          this.nodeId,
          this.config.maxConnectionsPerUser,
        );
        if (ok && conn.ws === null) this.uncount(conn, true);
        else conn.counted = ok;
      } catch (e) {
        this.log.warn("connection not counted cluster-wide", { error: errorText(e) });
      }
    }
    await listening;
    return ok;
  }

  private uncount(conn: Conn, force = false): void {
    if (!force && !conn.counted) return;
    conn.counted = false;
    this.nodes?.removeConnection(conn.userId, this.nodeId).catch(() => {});
  }

  /** After the directory lost this node: its users' counts and room members again. */
  private async resync(): Promise<void> {
    if (this.nodes === null) return;
    await this.nodes.resync(this.nodeId, this.sessions.counts());
    for (const conn of this.sessions.all()) conn.counted = true;
    const now = Date.now();
    for (const [info, conns] of this.membership.entries())
      for (const conn of conns) {
        await this.registry.rejoin(info, conn.key, now);
        await this.presence.add(info.name, conn.userId, conn.key);
      }
  }

  close(conn: Conn): void {
    if (conn.slot === null || conn.ws === null) return;
    // Gone first: a closed socket is not flushed to (membership.drop) nor unsubscribed (Bun does).
    conn.ws = null;
    if (conn.room !== null) {
      this.leaveRoom(conn).catch((e) =>
        this.log.error("leave on disconnect failed", { error: errorText(e) }),
      );
    }
    conn.pending = null;
    conn.busy = false;
    this.uncount(conn);
    const last = this.sessions.remove(conn);
    if (last && this.clustered) this.broker.unsubscribeUser(conn.userId).catch(() => {});
    if (this.log.enabled("debug"))
      this.log.debug("disconnect", {
        user: conn.userId,
        conn: conn.id,
        connections: this.sessions.connections,
      });
  }

  /** Closes every socket of one user (deactivated or deleted), on every node; returns how many here. */
  kickUser(userId: string, reason: string): number {
    const n = this.sessions.kick(userId, reason);
    this.announce(() => this.broker.publishUser(userId, { t: "kick", user: userId, reason }));
    return n;
  }

  /** A user's record changed: every node forgets its cached copy. */
  userChanged(userId: string): void {
    this.users.forget(userId);
    this.announce(() => this.broker.publishAll({ t: "user_changed", user: userId }));
  }

  /** Closes every socket here (shutdown). */
  closeAll(code: number, reason: string): void {
    this.sessions.closeAll(code, reason);
  }

  /** True when the user has a live socket on this node. */
  isOnline(userId: string): boolean {
    return this.sessions.isOnline(userId);
  }

  // ---------------------------------------------------------------- rooms

  /**
   * Puts a socket in a room it already joined in the registry: once this node hears the room
   * cluster-wide, reads the room's position (and with `since`, the history after it), calls
   * `tell` with what the socket is to be told — room_joined's position, whether it recovered,
   * the messages to replay — and makes the socket live, in one synchronous step, so no message
   * falls between the replay and the live ones. False if the socket closed meanwhile.
   */
  async enterRoom(
    conn: Conn,
    room: RoomInfo,
    want: { since?: Position | undefined; presence?: boolean | undefined },
    tell: (e: Entered) => void,
  ): Promise<boolean> {
    if (conn.ws === null) {
      this.registry
        .leave(room.name, conn.key, Date.now())
        .catch((e) => this.log.error("leave after close failed", { error: errorText(e) }));
      return false;
    }
    const join: Joining = { conn, buffer: [] };
    let set = this.joining.get(room.name);
    if (set === undefined) {
      set = new Set();
      this.joining.set(room.name, set);
    }
    set.add(join);
    try {
      const ready = this.membership.enter(conn, room);
      if (ready !== null) await ready;
      if (await this.presence.add(room.name, conn.userId, conn.key))
        this.presenceChanged(room.name, conn.userId, true);
      const now = Date.now();
      const since = want.since;
      const read =
        since !== undefined && this.config.roomHistorySize > 0
          ? await this.history.since(room.name, since, now)
          : { ok: false as const, top: await this.history.position(room.name, now) };
      // Messages the read counted may still be on their way here: they go to the buffer first.
      if (this.clustered && !this.heard.covers(room.name, read.top)) await this.caughtUp(room.name);
      if (conn.ws === null || conn.room !== room.name) return false;
      tell(entered(since, read, join.buffer));
      this.membership.live(conn, room.name, want.presence === true);
      return true;
    } finally {
      set.delete(join);
      if (set.size === 0) this.joining.delete(room.name);
    }
  }

  /** Waits until this node has heard the room's messages published so far (heard.ts). */
  private async caughtUp(room: string): Promise<void> {
    try {
      if (!(await this.broker.sync(room, SYNC_WAIT_MS)))
        this.log.warn("room not caught up before a join", { room, waited_ms: SYNC_WAIT_MS });
    } catch (e) {
      this.log.warn("room not caught up before a join", { room, error: errorText(e) });
    }
  }

  /** A room message for the sockets joining the room right now (held until they go live). */
  private hold(m: ChatMessage): void {
    if (this.joining.size === 0) return;
    const set = this.joining.get(m.room);
    if (set !== undefined) for (const j of set) j.buffer.push(m);
  }

  /** Takes a socket out of its current room, here and in the registry. */
  async leaveRoom(conn: Conn): Promise<void> {
    const room = conn.room;
    if (room === null) return;
    this.membership.drop(conn, room);
    await this.registry.leave(room, conn.key, Date.now());
    if (await this.presence.remove(room, conn.userId, conn.key))
      this.presenceChanged(room, conn.userId, false);
  }

  /** A user's first socket entered a room, or its last left: to the sockets that asked, everywhere. */
  private presenceChanged(room: string, user: string, joined: boolean, announce = true): void {
    this.fanout.presence(
      room,
      joined ? events.presenceJoin(room, user) : events.presenceLeave(room, user),
    );
    if (announce)
      this.announce(() => this.broker.publishRoom(room, { t: "presence", room, user, joined }));
  }

  /** A dead node's users leave the rooms they were in only there. */
  private async nodeDead(nodeId: string): Promise<void> {
    for (const gone of await this.presence.purgeNode(nodeId))
      this.presenceChanged(gone.room, gone.user_id, false);
  }

  /** `typing` in the socket's room: to the room's other sockets that asked for presence. */
  typing(conn: Conn, room: string): void {
    this.fanout.typing(room, events.typing(room, conn.userId), conn);
    this.announce(() => this.broker.publishRoom(room, { t: "typing", room, user: conn.userId }));
  }

  /**
   * After the registry closed a room: tell its members and move them out, here and (when the
   * closer is on this node) on every other node.
   */
  roomClosed(room: string, by: string, closer: Conn | null): void {
    const closerInside = closer !== null && closer.room === room;
    if (closer) closer.send(events.roomClosedToCloser(room, by));
    this.fanout.roomEvent(room, events.roomClosedToMembers(room, by), closer);
    this.fanout.roomEvent(room, events.roomUpdate(null), closerInside ? null : closer);
    this.membership.dropAll(room);
    if (closer !== null) {
      this.history.drop(room).catch(() => {});
      this.presence.drop(room).catch(() => {});
      this.announce(() => this.broker.publishRoom(room, { t: "room_closed", room, by }));
    }
  }

  // ---------------------------------------------------------------- messages

  /**
   * A room message: its place in the room's stream (seq, epoch), then every socket of the room
   * on every node, in that order. One node: all at once. Cluster: the history's one atomic Redis
   * step gives the seq and publishes; every node, this one too, delivers in the order Redis
   * publishes.
   * `bot`: the bot's reply, sent to the sender right after its echo.
   */
  sendToRoom(from: Conn, room: string, content: string, bot?: Rendered): void {
    const now = Date.now();
    const m: ChatMessage = {
      id: Bun.randomUUIDv7(),
      room,
      from: from.userId,
      content,
      sent_at: new Date(now).toISOString(),
    };
    const history = this.history;
    if (history.appendNow !== undefined) {
      const placed = history.appendNow(room, m, now);
      this.hold(placed);
      this.fanout.roomMessage(placed, from);
      if (bot !== undefined) from.send(bot);
      if (this.clustered)
        this.broker.publishRoom(room, { t: "message", m: placed }).catch((e) => {
          this.log.warn("room message not published", { room, error: errorText(e) });
          from.send(errors.unavailable());
        });
      return;
    }
    // Redis down, or back but this node not yet listening again: the message would get its seq
    // and reach no one here (its sender not even the echo). Refused, the sender is told.
    if (this.broker.state === "down") {
      from.send(errors.unavailable());
      return;
    }
    // The echo comes back through Redis; the sender's later answers wait for it (Conn.held).
    // ECHO_WAIT_MS after Redis's answer the sender goes on regardless.
    const waits = this.echoWaits;
    const wait = waits.start(m.id, from, from.messageSent(bot !== undefined), bot);
    history.append(room, m, now, this.broker.announce?.(room, from.id)).then(
      () => waits.answered(m.id, wait),
      (e) => {
        this.log.warn("room message not published", { room, error: errorText(e) });
        waits.failed(m.id, wait);
        from.send(errors.unavailable());
      },
    );
  }

  /**
   * A direct message to every socket of `to`, on any node, and its echo to the sender. False when
   * `to` has no socket anywhere (nothing is sent); a promise of that in cluster mode.
   */
  sendDirect(from: Conn, to: string, content: string): boolean | Promise<boolean> {
    const m: DirectMessage = {
      id: Bun.randomUUIDv7(),
      from: from.userId,
      to,
      content,
      sent_at: new Date().toISOString(),
    };
    if (!this.clustered) {
      if (!this.sessions.isOnline(to)) return false;
      this.fanout.direct(m, from);
      return true;
    }
    return this.broker.publishUser(to, { t: "direct", m }).then(
      (others) => {
        if (others === 0 && !this.sessions.isOnline(to)) return false;
        this.fanout.direct(m, from);
        return true;
      },
      (e) => {
        // The cluster is out of reach: this node's sockets of `to` still get it.
        if (!this.sessions.isOnline(to)) throw e;
        this.fanout.direct(m, from);
        return true;
      },
    );
  }

  /** A broadcast to every socket on every node; returns its id. */
  broadcast(from: string, content: string): string {
    const m: BroadcastMessage = {
      id: Bun.randomUUIDv7(),
      from,
      content,
      sent_at: new Date().toISOString(),
    };
    this.fanout.broadcast(m);
    this.announce(() => this.broker.publishAll({ t: "broadcast", m }));
    return m.id;
  }

  // ---------------------------------------------------------------- from other nodes

  private receive(e: Envelope, fromNode: string): void {
    switch (e.t) {
      case "message": {
        const m = e.m;
        // This node's own message, back in the room's order: its sender gets the echo now.
        const own = fromNode === this.nodeId ? this.sessions.find(m.from, e.c) : null;
        this.heard.message(m.room, m.epoch, m.seq);
        this.hold(m);
        this.fanout.roomMessage(m, own);
        if (fromNode === this.nodeId) this.echoWaits.echoed(m.id);
        break;
      }
      case "room_closed":
        this.roomClosed(e.room, e.by, null);
        break;
      case "direct":
        this.fanout.direct(e.m, null);
        break;
      case "kick":
        this.sessions.kick(e.user, e.reason);
        break;
      case "broadcast":
        this.fanout.broadcast(e.m);
        break;
      case "user_changed":
        this.users.forget(e.user);
        break;
      case "presence":
        this.presenceChanged(e.room, e.user, e.joined, false);
        break;
      case "typing":
        this.fanout.typing(e.room, events.typing(e.room, e.user), null);
        break;
    }
  }

  private listen(room: string): Promise<void> {
    return this.broker
      .subscribeRoom(room)
      .catch((e) => this.log.warn("room channel not subscribed", { room, error: errorText(e) }));
  }

  /** Publishes to other nodes in cluster mode; a failure is logged (the local part is done). */
  private announce(publish: () => Promise<unknown>): void {
    if (!this.clustered) return;
    publish().catch((e) => this.log.warn("cluster publish failed", { error: errorText(e) }));
  }
}
