// A minimal WebSocket client over Bun.connect (TCP), for the load clients: text frames out
// (masked with a zero key, which RFC 6455 allows, so no byte is rewritten), text frames in as raw
// payload bytes (no UTF-8 decode, no event object per frame), pings answered with pongs. Bun's own
// WebSocket client costs the load client ~1.5 µs per received message, more than the server spends
// per delivery, so with it the client, not the server, sets the pace of a fan-out run. A source
// address can be chosen (`localAddress`, so sockets spread over 127.0.0.x on both ends).
import type { Socket, TCPSocketConnectOptions } from "bun";

const OP_TEXT = 0x1;
const OP_BINARY = 0x2;
const OP_CLOSE = 0x8;
const OP_PING = 0x9;
const OP_PONG = 0xa;
const MAX_HEADER = 16 * 1024;
/** Any key will do: the server only echoes its SHA-1 back. */
const KEY = "a2FiYXItYmVuY2gta2V5MQ==";

/** Receives one frame's payload: `buf[start, end)` (no copy, no view object per frame). */
export type FrameHandler = (buf: Buffer, start: number, end: number) => void;

interface State {
  ws: RawSocket | null;
  /** Bytes received and not yet parsed (handshake or a partial frame). */
  pending: Buffer | null;
  upgraded: boolean;
  settle: ((error: string | null) => void) | null;
}

export class RawSocket {
  private handler: FrameHandler | null = null;
  /** Frames that arrived with the 101 answer, before anyone listened. */
  private early: Buffer | null = null;
  /** Called once when the connection ends, whoever ended it. */
  onclose: (() => void) | null = null;
  closed = false;
  private out: Buffer[] = [];

  private constructor(private readonly socket: Socket<State>) {}

  /** Text frames, as raw UTF-8 bytes: `buf[start, end)`, valid only during the call. */
  get onmessage(): FrameHandler | null {
    return this.handler;
  }
  set onmessage(fn: FrameHandler | null) {
    this.handler = fn;
    const early = this.early;
    if (fn !== null && early !== null) {
      this.early = null;
      onData(this.socket, early);
    }
  }

  /**
   * Connects (from `localAddress`; null: the kernel's choice) and upgrades; resolves once the
   * server answered 101.
   */
  static async connect(
    host: string,
    port: number,
    pathAndQuery: string,
    timeoutMs: number,
    localAddress: string | null = null,
  ): Promise<RawSocket> {
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
    const ws = new RawSocket(socket);
    state.ws = ws;
    socket.write(
      `GET ${pathAndQuery} HTTP/1.1\r\nHost: ${host}:${port}\r\nUpgrade: websocket\r\n` +
        `Connection: Upgrade\r\nSec-WebSocket-Key: ${KEY}\r\nSec-WebSocket-Version: 13\r\n\r\n`,
    );
    const error = await upgraded;
    clearTimeout(timer);
    state.settle = null;
    if (error !== null) {
      ws.close();
      throw new Error(error);
    }
    // Frames that came in the same read as the 101 answer wait for the first listener.
    ws.early = state.pending;
    state.pending = null;
    return ws;
  }

  /** Sends one text frame. */
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
    frame.fill(0, head - 4, head); // zero mask key
    body.copy(frame, head);
    this.write(frame);
  }

  /** Stops reading (the kernel buffers fill, the server's writes stall): a slow reader. */
  pauseReading(): void {
    this.socket.pause();
  }

  /** Sends a close frame and ends the connection. */
  close(): void {
    if (this.closed) return;
    this.control(OP_CLOSE, Buffer.from([0x03, 0xe8])); // 1000
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
    this.onmessage = null;
    cb?.();
  }

  /** @internal */
  control(op: number, payload: Uint8Array): void {
    const frame = Buffer.alloc(6 + payload.length);
    frame[0] = 0x80 | op;
    frame[1] = 0x80 | payload.length;
    frame.set(payload, 6);
    this.write(frame);
  }

  /** @internal Writes what the kernel did not take before. */
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
  if (ws === null) return;
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
    if (b1 & 0x80) head += 4; // servers never mask; tolerate it by skipping the key
    if (buf.length - at < head + len) break;
    const start = at + head;
    at = start + len;
    const op = b0 & 0x0f;
    if (op === OP_TEXT || op === OP_BINARY) ws.onmessage?.(buf, start, at);
    else if (op === OP_PING) ws.control(OP_PONG, buf.subarray(start, at));
    else if (op === OP_CLOSE) {
      s.end();
      ws.ended();
    }
  }
  if (at < buf.length && !ws.closed) st.pending = Buffer.from(buf.subarray(at));
}
