// The reconnect storm's WebSocket client (bench/history-client.ts): bench/raw-ws.ts's minimal
// client over Bun.connect (text frames out masked with a zero key, pings answered, no event object
// per frame) plus a chosen source address (`localAddress`, so sockets spread over 127.0.0.x on
// both ends) and whole text frames handed over as strings, since the storm client parses every
// frame as JSON. Every connect has a timeout.
import type { Socket, TCPSocketConnectOptions } from "bun";

const OP_TEXT = 0x1;
const OP_CLOSE = 0x8;
const OP_PING = 0x9;
const OP_PONG = 0xa;
const MAX_HEADER = 16 * 1024;
const KEY = "a2FiYXItYmVuY2gta2V5MQ==";

interface State {
  ws: StormSocket | null;
  pending: Buffer | null;
  upgraded: boolean;
  settle: ((error: string | null) => void) | null;
}

export class StormSocket {
  /** Each text frame, decoded. */
  onframe: ((text: string) => void) | null = null;
  /** Called once when the connection ends, whoever ended it. */
  onclose: (() => void) | null = null;
  closed = false;
  /** Frames that arrived with the 101 answer, before anyone listened. */
  early: string[] = [];
  private out: Buffer[] = [];

  private constructor(private readonly socket: Socket<State>) {}

  /** Connects from `localAddress` (null: the kernel's choice) and upgrades; resolves on 101. */
  static async connect(
    host: string,
    port: number,
    localAddress: string | null,
    path: string,
    timeoutMs: number,
  ): Promise<StormSocket> {
    const state: State = { ws: null, pending: null, upgraded: false, settle: null };
    const upgraded = new Promise<string | null>((resolve) => {
      state.settle = resolve;
    });
    const timer = setTimeout(() => state.settle?.(`timeout after ${timeoutMs} ms`), timeoutMs);
    // `localAddress` works in Bun.connect (checked on Bun 1.4.4) but is not in its types.
    const options: TCPSocketConnectOptions<State> & { localAddress?: string } = {
      hostname: host,
      port,
      data: state,
      socket: {
        data: (s, chunk) => onData(s, chunk),
        close: (s) => onEnd(s, "connection closed during the upgrade"),
        error: (s, e) => onEnd(s, `socket error: ${e.message}`),
        drain: (s) => s.data.ws?.flush(),
      },
      ...(localAddress === null ? {} : { localAddress }),
    };
    let socket: Socket<State>;
    try {
      socket = await Bun.connect<State>(options);
    } catch (e) {
      clearTimeout(timer);
      throw new Error(`connect ${host}:${port}: ${e instanceof Error ? e.message : String(e)}`);
    }
    const ws = new StormSocket(socket);
    state.ws = ws;
    socket.write(
      `GET ${path} HTTP/1.1\r\nHost: ${host}:${port}\r\nUpgrade: websocket\r\n` +
        `Connection: Upgrade\r\nSec-WebSocket-Key: ${KEY}\r\nSec-WebSocket-Version: 13\r\n\r\n`,
    );
    const error = await upgraded;
    clearTimeout(timer);
    state.settle = null;
    if (error !== null) {
      ws.close();
      throw new Error(error);
    }
    const rest = state.pending;
    state.pending = null;
    if (rest !== null) onData(socket, rest);
    return ws;
  }

  /** Hands over frames that came before `onframe` was set, then goes on live. */
  listen(fn: (text: string) => void): void {
    this.onframe = fn;
    const early = this.early.splice(0);
    for (const f of early) if (!this.closed) fn(f);
  }

  send(text: string): void {
    if (this.closed) return;
    const body = Buffer.from(text);
    const n = body.length;
    const head = n < 126 ? 6 : n < 65536 ? 8 : 14;
    const frame = Buffer.allocUnsafe(head + n);
    frame[0] = 0x80 | OP_TEXT;
    if (n < 126) frame[1] = 0x80 | n;
    else if (n < 65536) {
      frame[1] = 0x80 | 126;
      frame.writeUInt16BE(n, 2);
    } else {
      frame[1] = 0x80 | 127;
      frame.writeBigUInt64BE(BigInt(n), 2);
    }
    frame.fill(0, head - 4, head);
    body.copy(frame, head);
    this.write(frame);
  }

  close(): void {
    if (this.closed) return;
    this.control(OP_CLOSE, Buffer.from([0x03, 0xe8]));
    this.socket.end();
    this.ended();
  }

  /** @internal */
  ended(): void {
    if (this.closed) return;
    this.closed = true;
    this.out = [];
    const cb = this.onclose;
    this.onclose = null;
    this.onframe = null;
    cb?.();
  }

  /** @internal */
  frame(text: string): void {
    if (this.onframe === null) this.early.push(text);
    else this.onframe(text);
  }

  /** @internal */
  control(op: number, payload: Uint8Array): void {
    const frame = Buffer.alloc(6 + payload.length);
    frame[0] = 0x80 | op;
    frame[1] = 0x80 | payload.length;
    frame.set(payload, 6);
    this.write(frame);
  }

  /** @internal */
  flush(): void {
    while (this.out.length > 0) {
      const head = this.out[0] as Buffer;
      const n = this.socket.write(head);
      if (n < head.length) {
        this.out[0] = head.subarray(Math.max(0, n));
        return;
      }
      this.out.shift();
    }
  }

  private write(frame: Buffer): void {
    if (this.out.length > 0) {
      this.out.push(frame);
      return;
    }
    const n = this.socket.write(frame);
    if (n < frame.length) this.out.push(frame.subarray(Math.max(0, n)));
  }
}

function onEnd(s: Socket<State>, why: string): void {
  const st = s.data;
  if (!st.upgraded) st.settle?.(why);
  st.ws?.ended();
}

function onData(s: Socket<State>, chunk: Buffer): void {
  const st = s.data;
  const buf = st.pending === null ? chunk : Buffer.concat([st.pending, chunk]);
  st.pending = null;
  if (!st.upgraded) {
    const end = buf.indexOf("\r\n\r\n");
    if (end < 0) {
      if (buf.length > MAX_HEADER) st.settle?.("upgrade answer too long");
      else st.pending = Buffer.from(buf);
      return;
    }
    const status = buf.toString("latin1", 0, Math.min(end, 64));
    if (!status.startsWith("HTTP/1.1 101")) {
      st.settle?.(`upgrade refused: ${status.split("\r\n")[0]}`);
      return;
    }
    st.upgraded = true;
    if (end + 4 < buf.length) st.pending = Buffer.from(buf.subarray(end + 4));
    st.settle?.(null);
    return;
  }
  const ws = st.ws;
  if (ws === null) {
    st.pending = Buffer.from(buf);
    return;
  }
  let at = 0;
  while (!ws.closed) {
    if (buf.length - at < 2) break;
    const b0 = buf[at] as number;
    const b1 = buf[at + 1] as number;
    let len = b1 & 0x7f;
    let head = 2;
    if (len === 126) {
      if (buf.length - at < 4) break;
      len = buf.readUInt16BE(at + 2);
      head = 4;
    } else if (len === 127) {
      if (buf.length - at < 10) break;
      len = Number(buf.readBigUInt64BE(at + 2));
      head = 10;
    }
    if (b1 & 0x80) head += 4;
    if (buf.length - at < head + len) break;
    const start = at + head;
    at = start + len;
    const op = b0 & 0x0f;
    if (op === OP_TEXT) ws.frame(buf.toString("utf8", start, at));
    else if (op === OP_PING) ws.control(OP_PONG, buf.subarray(start, at));
    else if (op === OP_CLOSE) {
      s.end();
      ws.ended();
    }
  }
  if (at < buf.length && !ws.closed) st.pending = Buffer.from(buf.subarray(at));
}
