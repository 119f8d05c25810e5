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
import { allTopic, presenceTopic, roomTopic } from "./topics.ts";

export class Fanout {
  server: Server<Conn> | null = null;

  constructor(
    private readonly sessions: Sessions,
    private readonly out: Counter,
  ) {}

  /** One event to a room's sockets here, in both formats, skipping `except` (its own socket). */
  roomEvent(room: string, event: Rendered, except: Conn | null): void {
    for (const format of FORMATS)
      this.publishTopic(roomTopic(format, room), format, event[format], except);
  }

  /**
   * A room message to the room's sockets here. `from` is the sender's socket when it is on this
   * node (it gets the echo, "You wrote: …" in text format), null for a message from another node.
   */
  roomMessage(m: ChatMessage, from: Conn | null): void {
    const server = this.server;
    if (server === null) return;
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
