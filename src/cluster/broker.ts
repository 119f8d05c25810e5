// The Broker: how nodes of one cluster reach each other's sockets. One small interface, one file
// per implementation (memory-broker.ts for nodes in one process and the embedded default,
// redis-broker.ts for nodes over Redis pub/sub), one contract suite (test/contract/broker.ts)
// run against both — the shape of centrifuge's Broker and Socket.IO's adapters.
//
// A node subscribes to a room's channel while it has local sockets in the room, and to a user's
// channel while it has that user's sockets; every node listens to the "all" channel. Envelopes
// are plain objects; an implementation that crosses a process boundary serialises each one once.
// By default a node never receives its own envelopes (it delivered to its own sockets already);
// `echo: true` delivers them back in the broker's order, for rooms whose order the broker fixes.
import type { Announce } from "../history/history.ts";
import type { BroadcastMessage, ChatMessage, DirectMessage } from "../protocol.ts";

export type Envelope =
  /**
   * A room message, to the room's sockets. `c`: the sending socket's id on its node (for the
   * sender's own echo when the message comes back in the room's order).
   */
  | { t: "message"; m: ChatMessage; c?: number }
  /** The room was closed by its creator: its members are moved out. */
  | { t: "room_closed"; room: string; by: string }
  /** A direct message, to every socket of `m.to`. */
  | { t: "direct"; m: DirectMessage }
  /** Close every socket of one user (deactivated or deleted). */
  | { t: "kick"; user: string; reason: string }
  /** A broadcast, to every socket. */
  | { t: "broadcast"; m: BroadcastMessage }
  /** A user's record changed: drop it from every node's user cache. */
  | { t: "user_changed"; user: string }
  /** A user's first socket entered the room (`joined`) or its last one left. */
  | { t: "presence"; room: string; user: string; joined: boolean }
  /** A user is typing in the room (to the sockets that asked for presence). */
  | { t: "typing"; room: string; user: string };

/** Receives every envelope published by another node on a channel this node listens to. */
export type EnvelopeHandler = (envelope: Envelope, fromNode: string) => void;

/** "up": connected; "down": the shared backend is unreachable; "off": no backend (one node). */
export type BrokerState = "up" | "down" | "off";

export interface Broker {
  readonly nodeId: string;
  /** Entry counts of the in-process maps behind this part (operators' `GET /ws/internals`); cheap. */
  sizes?(): Record<string, number>;
  readonly state: BrokerState;
  /** Sets the one handler for incoming envelopes (call before subscribing). */
  onEnvelope(handler: EnvelopeHandler): void;
  /** Called when the backend comes back after being down (subscriptions already restored). */
  onRestore(handler: () => void): void;
  subscribeRoom(room: string): Promise<void>;
  unsubscribeRoom(room: string): Promise<void>;
  subscribeUser(userId: string): Promise<void>;
  unsubscribeUser(userId: string): Promise<void>;
  /** To the nodes listening to the room. Resolves once the backend has taken it. */
  publishRoom(room: string, envelope: Envelope): Promise<void>;
  /** To the nodes with the user's sockets; resolves with how many OTHER nodes received it. */
  publishUser(userId: string, envelope: Envelope): Promise<number>;
  /** To every other node. */
  publishAll(envelope: Envelope): Promise<void>;
  /**
   * A barrier in the room's channel: resolves true once every envelope published on it before
   * the call (by any node) has been handed to this node's handler; false when that was not seen
   * within `timeoutMs` (the backend lost the marker, e.g. in a restart). This node must listen to
   * the room. Rejects with BrokerUnavailableError when the backend is unreachable.
   */
  sync(room: string, timeoutMs: number): Promise<boolean>;
  /**
   * How the room history publishes a message in the same atomic step as it gives it a seq
   * (Redis): the channel and the payload around seq and epoch. Such a message reaches every node
   * listening to the room, this one included, in the room's order, as a `message` envelope with
   * `c` = `sender` (the sending socket's id). Undefined: no such backend.
   */
  announce?(room: string, sender: number): Announce;
  close(): Promise<void>;
}

export class BrokerUnavailableError extends Error {
  constructor(cause?: unknown) {
    super("broker unavailable", { cause });
    this.name = "BrokerUnavailableError";
  }
}
