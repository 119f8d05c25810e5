// Fan-out to this node's sockets on Bun topics: one topic per room per format and one per format
// for broadcasts, so every frame is serialised once per format and fanned out by Bun, not by JS
// loops. Direct messages go to the recipient's few sockets listed in Sessions.
import type { Server } from "bun";
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
import type { Conn } from "./connection.ts";
import type { Sessions } from "./sessions.ts";
import { allTopic, presenceTopic, roomTopic } from "./topics.ts";

export class Fanout {
  server: Server<Conn> | null = null;

  constructor(private readonly sessions: Sessions) {}

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
    if (server.subscriberCount(json) > 0) server.publish(json, messageFrames.json(m));
    if (from !== null && from.format === "text") {
      from.ws?.send(messageFrames.self(m));
      if (server.subscriberCount(text) > 1) from.ws?.publish(text, messageFrames.others(m));
    } else if (server.subscriberCount(text) > 0) {
      server.publish(text, messageFrames.others(m));
    }
  }

  /** One room message to one socket (a replay after recovery): its usual frame or line. */
  toSocket(conn: Conn, m: ChatMessage): void {
    if (conn.format === "json") conn.ws?.send(messageFrames.json(m));
    else conn.ws?.send(m.from === conn.userId ? messageFrames.self(m) : messageFrames.others(m));
  }

  /** A direct message to the recipient's sockets here, and its echo to `from` when given. */
  direct(m: DirectMessage, from: Conn | null): void {
    const r = renderDirect(m);
    for (const conn of this.sessions.socketsOf(m.to))
      conn.ws?.send(conn.format === "json" ? r.json : r.recipient);
    if (from !== null) from.ws?.send(from.format === "json" ? r.json : r.sender);
  }

  /** A presence event to the room's sockets here that asked for presence. */
  presence(room: string, event: Rendered): void {
    for (const format of FORMATS) this.server?.publish(presenceTopic(format, room), event[format]);
  }

  /** `typing` to the room's JSON sockets here that asked for presence, but `from`'s own. */
  typing(room: string, frame: string, from: Conn | null): void {
    const topic = presenceTopic("json", room);
    if (from !== null && from.format === "json" && from.presence && from.ws !== null)
      from.ws.publish(topic, frame);
    else this.server?.publish(topic, frame);
  }

  broadcast(m: BroadcastMessage): void {
    const r = renderBroadcast(m);
    for (const format of FORMATS) this.server?.publish(allTopic(format), r[format]);
  }

  private publishTopic(topic: string, format: Format, payload: string, except: Conn | null): void {
    if (except !== null && except.format === format && except.ws !== null)
      except.ws.publish(topic, payload);
    else this.server?.publish(topic, payload);
  }
}
