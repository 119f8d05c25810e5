// Fan-out to this node's sockets on Bun topics: one topic per room per format and one per format
// for broadcasts, so every frame is serialised once per format and fanned out by Bun, not by JS
// loops. Direct messages go to the recipient's few sockets listed in Sessions. Every frame handed
// to a socket is counted in `out` (kabar_frames_out_total): a topic publish by its subscribers.
import type { Server } from "bun";
import type { Counter } from "../metrics/registry.ts";
import {
  type BroadcastMessage,
  type ChatMessage,
  type DirectMessage,
  FORMATS,
  type Format,
  messageFrames,
  type Rendered,
  renderBroadcast,
  renderDirect,
} from "../protocol.ts";
import type { Conn, Socket } from "./connection.ts";
import type { Sessions } from "./sessions.ts";
import type { Slices } from "./slices.ts";
import { allTopic, presenceTopic, roomTopic } from "./topics.ts";

export class Fanout {
  server: Server<Conn> | null = null;

  constructor(
    private readonly sessions: Sessions,
    private readonly out: Counter,
    private readonly slices: Slices,
  ) {}

  /**
   * One event to a room's sockets here, in both formats, skipping `except` (its own socket).
   * Every slice at once, after what is queued for them (room events are rare).
   */
  roomEvent(room: string, event: Rendered, except: Conn | null): void {
    const slices = this.slices;
    if (slices.pending > 0) slices.flush();
    for (const format of FORMATS)
      for (let k = 0, n = slices.count(format, room); k < n; k++)
        this.publishTopic(slices.topic(format, room, k), format, event[format], except);
  }

  /**
   * A room message to the room's sockets here. `from` is the sender's socket when it is on this
   * node (it gets the echo, "You wrote: …" in text format), null for a message from another node.
   */
  roomMessage(m: ChatMessage, from: Conn | null): void {
    const server = this.server;
    if (server === null) return;
    const slices = this.slices;
    const nj = slices.count("json", m.room);
    const nt = slices.count("text", m.room);
    if (nj > 1 || nt > 1) {
      this.slicedMessage(m, from, nj, nt);
      return;
    }
    const json = roomTopic("json", m.room);
    const text = roomTopic("text", m.room);
    // JSON: the echo is the same frame, so a JSON sender gets it from the topic.
    const jsonSubs = server.subscriberCount(json);
    if (jsonSubs > 0) {
      server.publish(json, messageFrames.json(m));
      this.out.value += jsonSubs;
    }
    const textSubs = server.subscriberCount(text);
    const ws = from?.ws ?? null;
    if (from !== null && from.format === "text") {
      if (ws === null) return;
      ws.send(messageFrames.self(m));
      this.out.value++;
      if (textSubs > 1) {
        ws.publish(text, messageFrames.others(m));
        this.out.value += textSubs - 1;
      }
    } else if (textSubs > 0) {
      server.publish(text, messageFrames.others(m));
      this.out.value += textSubs;
    }
  }

  /**
   * A room message to a room in slices (slices.ts): the first slice now, each further one in a
   * later turn — but the sender's own slice now, after what was queued, so its echo (and what it
   * is sent next) keeps its place. An empty slice is skipped: whoever joins it later flushes the
   * queue first and gets only what is sent after its room_joined.
   */
  private slicedMessage(m: ChatMessage, from: Conn | null, nj: number, nt: number): void {
    const slices = this.slices;
    const sender = from !== null && from.ws !== null ? from : null;
    if (sender !== null && sender.slice > 0 && slices.pending > 0) slices.flush();
    const json = messageFrames.json(m);
    for (let k = 0; k < nj; k++) {
      const topic = slices.topic("json", m.room, k);
      if (k === 0 || (sender?.format === "json" && sender.slice === k))
        this.publishAll(topic, json);
      else if (this.server?.subscriberCount(topic))
        slices.defer(() => this.publishAll(topic, json));
    }
    const others = messageFrames.others(m);
    const textSender = sender?.format === "text" ? sender : null;
    const ws = textSender?.ws ?? null;
    if (ws !== null) {
      ws.send(messageFrames.self(m));
      this.out.value++;
    }
    for (let k = 0; k < nt; k++) {
      const topic = slices.topic("text", m.room, k);
      if (ws !== null && textSender?.slice === k) this.publishExcept(ws, topic, others);
      else if (k === 0) this.publishAll(topic, others);
      else if (this.server?.subscriberCount(topic))
        slices.defer(() => this.publishAll(topic, others));
    }
  }

  /** One room message to one socket (a replay after recovery): its usual frame or line. */
  toSocket(conn: Conn, m: ChatMessage): void {
    const ws = conn.ws;
    if (ws === null) return;
    this.out.value++;
    if (conn.format === "json") ws.send(messageFrames.json(m));
    else ws.send(m.from === conn.userId ? messageFrames.self(m) : messageFrames.others(m));
  }

  /** A direct message to the recipient's sockets here, and its echo to `from` when given. */
  direct(m: DirectMessage, from: Conn | null): void {
    const r = renderDirect(m);
    for (const conn of this.sessions.socketsOf(m.to)) {
      if (conn.ws === null) continue;
      conn.ws.send(conn.format === "json" ? r.json : r.recipient);
      this.out.value++;
    }
    if (from !== null && from.ws !== null) {
      from.ws.send(from.format === "json" ? r.json : r.sender);
      this.out.value++;
    }
  }

  /** A presence event to the room's sockets here that asked for presence. */
  presence(room: string, event: Rendered): void {
    for (const format of FORMATS) this.publishAll(presenceTopic(format, room), event[format]);
  }

  /** `typing` to the room's JSON sockets here that asked for presence, but `from`'s own. */
  typing(room: string, frame: string, from: Conn | null): void {
    const topic = presenceTopic("json", room);
    if (from !== null && from.format === "json" && from.presence && from.ws !== null)
      this.publishExcept(from.ws, topic, frame);
    else this.publishAll(topic, frame);
  }

  broadcast(m: BroadcastMessage): void {
    const r = renderBroadcast(m);
    for (const format of FORMATS) this.publishAll(allTopic(format), r[format]);
  }

  private publishTopic(topic: string, format: Format, payload: string, except: Conn | null): void {
    if (except !== null && except.format === format && except.ws !== null)
      this.publishExcept(except.ws, topic, payload);
    else this.publishAll(topic, payload);
  }

  /** To every subscriber of `topic`. */
  private publishAll(topic: string, payload: string): void {
    const server = this.server;
    if (server === null) return;
    const subs = server.subscriberCount(topic);
    if (subs === 0) return;
    server.publish(topic, payload);
    this.out.value += subs;
  }

  /** To every subscriber of `topic` but `ws`. */
  private publishExcept(ws: Socket, topic: string, payload: string): void {
    ws.publish(topic, payload);
    const subs = this.server?.subscriberCount(topic) ?? 0;
    this.out.value += ws.isSubscribed(topic) ? subs - 1 : subs;
  }
}
