// A typed Kabar client for programs and for the web pages: connect with a token, send typed
// commands, read typed events (callbacks or `for await`), and reconnect with backoff. After a
// reconnect it joins the room it was in again with `since` (recovery, protocol 1.1), so no
// message is missed or repeated while the room's history still holds them.
// Types only come from src/protocol.ts (TypeBox `Static<>`): nothing of TypeBox is bundled.
import type { Command, CommandName, ServerEvent } from "../protocol.ts";

/** Every command as the frame that goes on the wire: `{ type, ...fields }`. */
export type CommandFrame = { [N in CommandName]: { type: N } & Command<N> }[CommandName];
export type EventType = ServerEvent["type"];
/** The event of one `type`, e.g. `EventOf<"message">`. */
export type EventOf<T extends EventType> = Extract<ServerEvent, { type: T }>;

export type ConnectionState =
  /** First connect, or a reconnect attempt under way. */
  | { state: "connecting"; attempt: number }
  /** Welcome received. */
  | { state: "open"; userId: string }
  /** Closed; the next attempt starts after `delayMs`. */
  | { state: "waiting"; attempt: number; delayMs: number; code: number; reason: string }
  /** Closed for good: by `close()`, or by a close the client must not retry (1008). */
  | { state: "closed"; code: number; reason: string };

/** The subset of the WebSocket constructor the client needs (browsers and Bun have it). */
export type SocketFactory = (url: string) => WebSocket;

export interface ClientOptions {
  /** `ws://host:port/api/v1/ws` (no query). */
  url: string;
  /** The access token, or a function asked before every (re)connect. */
  token: string | (() => string | Promise<string>);
  /** Reconnect after an unexpected close (default true). */
  reconnect?: boolean;
  /** First retry delay (default 500 ms); doubled each attempt up to `maxDelayMs` (default 15 s). */
  minDelayMs?: number;
  maxDelayMs?: number;
  /** Ask for presence_join / presence_leave / typing on every join (default false). */
  presence?: boolean;
  socket?: SocketFactory;
}

/** 1008: refused token, deactivated or deleted user, too many connections. Retrying cannot help. */
export const FINAL_CLOSE_CODES: ReadonlySet<number> = new Set([1008]);

type Listener<E> = (event: E) => void;

/**
 * One logical connection: it survives socket losses (when `reconnect` is on), keeps the current
 * room and its position (epoch, last seq), and re-joins that room after a reconnect.
 */
export class KabarClient {
  userId: string | undefined;
  /** The room this connection is in (from `room_joined` / `room_update`). */
  room: string | null = null;
  /** The current room's position: where a recovery join starts. */
  position: { epoch: string; seq: number } | undefined;
  private ws: WebSocket | undefined;
  private attempt = 0;
  /** True from a reconnect's re-join until its answer. */
  private rejoining = false;
  private stopped = false;
  private timer: ReturnType<typeof setTimeout> | undefined;
  private readonly listeners = new Map<string, Set<Listener<ServerEvent>>>();
  private readonly stateListeners = new Set<Listener<ConnectionState>>();
  private current: ConnectionState = { state: "connecting", attempt: 0 };
  private readonly opts: Required<Omit<ClientOptions, "token">> & Pick<ClientOptions, "token">;

  constructor(options: ClientOptions) {
    this.opts = {
      reconnect: true,
      minDelayMs: 500,
      maxDelayMs: 15_000,
      presence: false,
      socket: (url) => new WebSocket(url),
      ...options,
    };
  }

  /** Connects and resolves on the welcome; rejects when the first socket closes before it. */
  static connect(options: ClientOptions): Promise<KabarClient> {
    const client = new KabarClient(options);
    return new Promise((resolve, reject) => {
      const off = client.onState((s) => {
        if (s.state === "open") {
          off();
          resolve(client);
        } else if (s.state === "waiting" || s.state === "closed") {
          off();
          if (s.state === "waiting") client.close();
          reject(new Error(`connection closed before welcome: ${s.code} ${s.reason}`.trim()));
        }
      });
      client.start();
    });
  }

  get state(): ConnectionState {
    return this.current;
  }

  /** Opens the first socket (KabarClient.connect does this for you). */
  start(): void {
    this.stopped = false;
    void this.open();
  }

  /** Sends one command; false when no socket is open (nothing is queued). */
  send(command: CommandFrame): boolean {
    const ws = this.ws;
    if (ws?.readyState !== 1 || this.current.state !== "open") return false;
    ws.send(JSON.stringify(command));
    return true;
  }

  /** Calls `fn` for every event of `type`; returns a function that stops it. */
  on<T extends EventType>(type: T, fn: Listener<EventOf<T>>): () => void {
    let set = this.listeners.get(type);
    if (!set) {
      set = new Set();
      this.listeners.set(type, set);
    }
    const listener = fn as Listener<ServerEvent>;
    set.add(listener);
    return () => set.delete(listener);
  }

  /** Calls `fn` for every event. */
  onAny(fn: Listener<ServerEvent>): () => void {
    return this.on("*" as EventType, fn as Listener<EventOf<EventType>>);
  }

  /** Calls `fn` on every change of the connection state. */
  onState(fn: Listener<ConnectionState>): () => void {
    this.stateListeners.add(fn);
    return () => this.stateListeners.delete(fn);
  }

  /** The next event of `type` (any type when omitted); rejects after `timeoutMs`. */
  next<T extends EventType>(type?: T, timeoutMs = 5000): Promise<EventOf<T>> {
    return new Promise((resolve, reject) => {
      const off = this.onAny((e) => {
        if (type !== undefined && e.type !== type) return;
        off();
        clearTimeout(timer);
        resolve(e as EventOf<T>);
      });
      const timer = setTimeout(() => {
        off();
        reject(new Error(`no ${type ?? "event"} within ${timeoutMs} ms`));
      }, timeoutMs);
    });
  }

  /** Every event from now on, until the client is closed for good. */
  async *events(): AsyncGenerator<ServerEvent, void, undefined> {
    const queue: ServerEvent[] = [];
    let wake: (() => void) | undefined;
    let done = false;
    const offEvent = this.onAny((e) => {
      queue.push(e);
      wake?.();
    });
    const offState = this.onState((s) => {
      if (s.state !== "closed") return;
      done = true;
      wake?.();
    });
    try {
      for (;;) {
        const e = queue.shift();
        if (e) {
          yield e;
          continue;
        }
        if (done || this.current.state === "closed") return;
        await new Promise<void>((r) => {
          wake = r;
        });
        wake = undefined;
      }
    } finally {
      offEvent();
      offState();
    }
  }

  /** Closes for good (no reconnect). */
  close(): void {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    const ws = this.ws;
    this.ws = undefined;
    if (ws && ws.readyState <= 1) ws.close(1000);
    this.setState({ state: "closed", code: 1000, reason: "closed by the client" });
  }

  /** Drops the socket as a network failure would (tests, or a "reconnect now" button). */
  drop(): void {
    this.ws?.close(4000, "dropped by the client");
  }

  private setState(s: ConnectionState): void {
    this.current = s;
    for (const fn of [...this.stateListeners]) fn(s);
  }

  private emit(e: ServerEvent): void {
    for (const fn of [...(this.listeners.get(e.type) ?? [])]) fn(e);
    for (const fn of [...(this.listeners.get("*") ?? [])]) fn(e);
  }

  private async open(): Promise<void> {
    if (this.stopped) return;
    this.setState({ state: "connecting", attempt: this.attempt });
    let token: string;
    try {
      token = typeof this.opts.token === "string" ? this.opts.token : await this.opts.token();
    } catch (e) {
      this.setState({ state: "closed", code: 1008, reason: `no token: ${String(e)}` });
      return;
    }
    if (this.stopped) return;
    let ws: WebSocket;
    try {
      ws = this.opts.socket(`${this.opts.url}?token=${encodeURIComponent(token)}&format=json`);
    } catch (e) {
      // A malformed URL: retrying cannot help.
      this.stopped = true;
      this.setState({ state: "closed", code: 1006, reason: `cannot connect: ${String(e)}` });
      return;
    }
    this.ws = ws;
    ws.onmessage = (m) => {
      if (this.ws !== ws) return;
      let e: ServerEvent;
      try {
        e = JSON.parse(String(m.data)) as ServerEvent;
      } catch {
        return;
      }
      this.track(e);
      if (e.type === "welcome") this.welcomed(e.user_id);
      this.emit(e);
    };
    ws.onclose = (c) => {
      if (this.ws !== ws) return;
      this.ws = undefined;
      this.closed(c.code, c.reason);
    };
  }

  private welcomed(userId: string): void {
    this.userId = userId;
    this.attempt = 0;
    this.setState({ state: "open", userId });
    const room = this.room;
    if (room === null) return;
    // Back in the room we were in, from where we stopped (recovery when the history allows).
    const since = this.position;
    this.rejoining = true;
    this.send({
      type: "join_room",
      room_name: room,
      ...(since ? { since } : {}),
      ...(this.opts.presence ? { presence: true } : {}),
    });
  }

  /** Keeps `room` and `position` in step with what the server says. */
  private track(e: ServerEvent): void {
    switch (e.type) {
      case "room_joined":
        this.room = e.room;
        this.position = { epoch: e.epoch, seq: e.seq };
        this.rejoining = false;
        break;
      case "room_update":
        this.room = e.room;
        if (e.room === null) this.position = undefined;
        break;
      case "message":
        if (e.room === this.room && this.position && e.epoch === this.position.epoch)
          this.position = { epoch: e.epoch, seq: Math.max(this.position.seq, e.seq) };
        break;
      case "error":
        // The room we tried to re-join is gone (closed, or lost with a restarted server).
        if (this.rejoining && e.code === "room_not_found") {
          this.room = null;
          this.position = undefined;
        }
        this.rejoining = false;
        break;
      default:
        break;
    }
  }

  private closed(code: number, reason: string): void {
    if (this.stopped) return;
    if (!this.opts.reconnect || FINAL_CLOSE_CODES.has(code)) {
      this.stopped = true;
      this.setState({ state: "closed", code, reason });
      return;
    }
    this.attempt++;
    const base = Math.min(this.opts.maxDelayMs, this.opts.minDelayMs * 2 ** (this.attempt - 1));
    // Jitter: a restarted server is not hit by every client at the same instant.
    const delayMs = Math.round(base * (0.5 + Math.random() * 0.5));
    this.setState({ state: "waiting", attempt: this.attempt, delayMs, code, reason });
    this.timer = setTimeout(() => void this.open(), delayMs);
  }
}
