// One WebSocket connection: the only state kept per socket, and the way a frame flows:
// socket → rate limit → decode/validate → handler (from the registry map) → hub → Bun topics.
import type { ServerWebSocket } from "bun";
import { errorText } from "../log.ts";
import { errors, type Format, type Rendered, TYPE_PATTERN } from "../protocol.ts";
import type { Command, Hub, UserSlot } from "./hub.ts";

export type Socket = ServerWebSocket<Conn>;

/**
 * Per-socket state, used as Bun's `ws.data`. Elysia's `.ws()` would keep a copy of the whole
 * request context per socket; this object is all a socket holds. Its methods are called by
 * Elysia's websocket dispatcher (`ws.data.open(ws)`, `ws.data.message(ws, frame)`, ...).
 */
export class Conn {
  ws: Socket | null = null;
  /** The user's shared state (rate-limit bucket, sockets); null until accepted. */
  slot: UserSlot | null = null;
  room: string | null = null;
  /** Cluster mode: this socket is in the node directory's per-user count. */
  counted = false;
  /** The socket joined its room with `presence: true` (presence events and typing). */
  presence = false;
  /** Its slice of its room's topics (slices.ts) while live in the room; -1 otherwise. */
  slice = -1;
  /** True while an async handler runs; frames arriving meanwhile wait in `pending`, in order. */
  busy = false;
  pending: Array<string | Buffer | Gated> | null = null;

  constructor(
    readonly hub: Hub,
    readonly id: number,
    readonly userId: string,
    readonly format: Format,
    /** Token expiry, seconds since the epoch. */
    readonly exp: number,
    /** When set, the socket is closed with 1008 and this reason right after the upgrade. */
    readonly reject: string | null = null,
  ) {}

  private memberKey: string | null = null;

  /** Key of this socket in the room registry and presence (one string, shared by both). */
  get key(): string {
    if (this.memberKey === null) this.memberKey = `${this.hub.nodeId}:${this.id}`;
    return this.memberKey;
  }

  /**
   * Cluster mode: this socket's room messages sent through Redis (`sent`) and those whose echo
   * came back (`echoed`). While they differ, what the socket is sent directly (answers, errors,
   * the bot's reply) waits in `held` behind the echoes sent before it, so that it sees everything
   * in the order of its frames, as on one node; its room messages themselves still go out at once.
   */
  private sent = 0;
  private echoed = 0;
  private held: Held[] | null = null;

  send(event: Rendered): void {
    const frame = this.format === "json" ? event.json : event.text;
    this.hub.metrics.framesOut.value++;
    if (this.sent === this.echoed) this.ws?.send(frame);
    else this.hold(this.sent, frame);
  }

  /** A room message of this socket goes out through Redis; returns its number for `echoedUpTo`. */
  messageSent(withBotReply: boolean): number {
    const k = ++this.sent;
    // The bot's reply to it goes right after its echo, before any later answer.
    if (withBotReply) this.hold(k, null);
    return k;
  }

  /**
   * Message k's echo has come back (or never will: a failure, a timeout): what waited behind it
   * goes out, `bot` (its reply) first.
   */
  echoedUpTo(k: number, bot?: Rendered): void {
    if (k <= this.echoed) return;
    this.echoed = k;
    const held = this.held;
    if (held === null) return;
    let i = 0;
    while (i < held.length && (held[i] as Held).after <= k) {
      const h = held[i] as Held;
      if (h.frame !== null) this.ws?.send(h.frame);
      else if (h.after === k && bot !== undefined) {
        this.hub.metrics.framesOut.value++;
        this.ws?.send(this.format === "json" ? bot.json : bot.text);
      }
      i++;
    }
    if (i === held.length) this.held = null;
    else held.splice(0, i);
  }

  private hold(after: number, frame: string | null): void {
    if (this.held === null) this.held = [{ after, frame }];
    else this.held.push({ after, frame });
  }

  /**
   * Runs `fn` with this socket's writes corked: one syscall for several frames. Bun corks the
   * `message` callback itself, but not the continuation of an async handler after an `await`.
   */
  batch(fn: () => void): void {
    if (this.ws === null) fn();
    else this.ws.cork(fn);
  }

  // ---- Bun websocket events (called with `this` = ws.data)

  open(ws: Socket): void {
    this.hub.open(this, ws);
  }

  message(_ws: Socket, frame: string | Buffer): void {
    const slot = this.slot;
    if (slot === null) return;
    const now = Date.now();
    const taken = slot.bucket.take(now);
    if (taken === false) {
      this.hub.metrics.rateLimited.value++;
      this.send(errors.rateLimited(slot.bucket.retryAfterSeconds(now)));
      return;
    }
    if (taken !== true) {
      this.gate(taken, frame);
      return;
    }
    if (this.busy) {
      if (this.pending === null) this.pending = [frame];
      else this.pending.push(frame);
      return;
    }
    const running = dispatch(this, frame);
    if (running !== undefined) this.wait(running);
  }

  close(_ws: Socket, code: number, _reason: string): void {
    this.hub.metrics.closed(code);
    this.hub.close(this);
  }

  drain(_ws: Socket): void {}

  /** Cluster mode: the frame waits for the rate limit's answer; later frames queue behind it. */
  private gate(admitted: Promise<boolean>, frame: string | Buffer): void {
    const gated = new Gated(frame, admitted);
    if (this.busy) {
      if (this.pending === null) this.pending = [gated];
      else this.pending.push(gated);
      return;
    }
    this.busy = true;
    this.pending = [gated];
    this.next();
  }

  private wait(running: Promise<void>): void {
    this.busy = true;
    running.then(() => this.next());
  }

  /** Runs the frames that queued while a handler was busy, until one goes async again. */
  private next(): void {
    const queue = this.pending;
    while (queue !== null && queue.length > 0 && this.ws !== null) {
      const item = queue.shift() as string | Buffer | Gated;
      if (item instanceof Gated) {
        item.admitted.then((ok) => {
          const slot = this.slot;
          if (!ok) this.hub.metrics.rateLimited.value++;
          if (!ok && slot !== null)
            this.send(errors.rateLimited(slot.bucket.retryAfterSeconds(Date.now())));
          const running = ok && this.ws !== null ? dispatch(this, item.frame) : undefined;
          if (running !== undefined) running.then(() => this.next());
          else this.next();
        });
        return;
      }
      const running = dispatch(this, item);
      if (running !== undefined) {
        running.then(() => this.next());
        return;
      }
    }
    this.busy = false;
    this.pending = null;
  }
}

/** A frame that goes out once echo `after` is back; null: the slot of that message's bot reply. */
interface Held {
  after: number;
  frame: string | null;
}

/** A frame waiting for the cluster's rate-limit answer. */
class Gated {
  constructor(
    readonly frame: string | Buffer,
    readonly admitted: Promise<boolean>,
  ) {}
}

/** Decodes and validates one frame, then runs its handler. Never throws; may return a promise. */
export function dispatch(conn: Conn, frame: string | Buffer): Promise<void> | undefined {
  const rejected = conn.hub.metrics.rejected;
  if (typeof frame !== "string") {
    rejected.binary.value++;
    conn.send(errors.invalidMessage("binary frames are not supported; send JSON text"));
    return undefined;
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(frame);
  } catch {
    rejected.invalid_json.value++;
    conn.send(errors.invalidJson());
    return undefined;
  }
  if (parsed === null || typeof parsed !== "object" || Array.isArray(parsed)) {
    rejected.invalid_message.value++;
    conn.send(errors.invalidMessage("expected a JSON object"));
    return undefined;
  }
  const cmd = parsed as Record<string, unknown>;
  const type = cmd.type;
  if (typeof type !== "string" || !TYPE_PATTERN.test(type)) {
    rejected.invalid_message.value++;
    conn.send(
      errors.invalidMessage(
        type === undefined ? "type is required" : "type must be a string matching ^[a-z_]+$",
      ),
    );
    return undefined;
  }
  const command = conn.hub.command(type);
  if (command === undefined) {
    rejected.unknown_type.value++;
    conn.send(errors.unknownType(type));
    return undefined;
  }
  const handler = command.handler;
  if (!handler.check.Check(cmd)) {
    rejected.invalid_message.value++;
    conn.send(errors.invalidMessage(handler.explain(cmd)));
    return undefined;
  }
  const bad = handler.normalize?.(cmd);
  if (bad !== undefined) {
    rejected.invalid_message.value++;
    conn.send(errors.invalidMessage(bad));
    return undefined;
  }
  command.frames.value++;
  const started = performance.now();
  try {
    const result = handler.run(conn, cmd);
    if (result instanceof Promise)
      return result.then(
        () => timed(command, started),
        (e) => {
          failed(conn, type, e);
          timed(command, started);
        },
      );
  } catch (e) {
    failed(conn, type, e);
  }
  timed(command, started);
  return undefined;
}

/** The handler's time, into kabar_handler_duration_seconds (two performance.now() per frame). */
function timed(command: Command, started: number): void {
  command.duration.observe((performance.now() - started) / 1000);
}

function failed(conn: Conn, type: string, error: unknown): void {
  conn.hub.log.error("handler failed", { type, user: conn.userId, error: errorText(error) });
  conn.send(errors.unavailable());
}
