// A small WebSocket client over Bun.connect for the tests that need a misbehaving peer, which
// neither Bun's WebSocket nor the benchmark's client (bench/raw-ws.ts) can be: one that stops
// reading its socket (a slow reader: the kernel buffers fill and the server sees backpressure)
// and one that reads but never answers pings. Text frames only, masked with a zero key.
import type { Socket } from "bun";
import { frameAt } from "./tcp-raw.ts";

const OP_TEXT = 0x1;
const OP_CLOSE = 0x8;
const OP_PING = 0x9;
const OP_PONG = 0xa;

export interface TcpWsOptions {
  /** Answer the server's pings with pongs, as every conforming client must (default true). */
  answerPings?: boolean;
  timeoutMs?: number;
}

interface State {
  ws: TcpWs | null;
  buf: Buffer;
  upgraded: boolean;
  settle: ((error: string | null) => void) | null;
}

export class TcpWs {
  /** Text frames received, in order. */
  readonly frames: string[] = [];
  /** Pings received from the server. */
  pings = 0;
  /** The close code the server sent (null: none, or the connection just ended). */
  closeCode: number | null = null;
  ended = false;
  /** Resolves when the connection ends, whoever ended it. */
  readonly closed: Promise<void>;
  private resolveClosed: () => void = () => {};
  private waiters: Array<() => void> = [];

  private constructor(
    private readonly socket: Socket<State>,
    private readonly answerPings: boolean,
  ) {
    this.closed = new Promise((resolve) => {
      this.resolveClosed = resolve;
    });
  }

  /** Connects and upgrades; resolves once the server answered 101, rejects otherwise. */
  static async connect(
    host: string,
    port: number,
    pathAndQuery: string,
    options: TcpWsOptions = {},
  ): Promise<TcpWs> {
    const state: State = { ws: null, buf: Buffer.alloc(0), upgraded: false, settle: null };
    const upgraded = new Promise<string | null>((resolve) => {
      state.settle = resolve;
    });
    const timeoutMs = options.timeoutMs ?? 5000;
    const timer = setTimeout(() => state.settle?.(`no upgrade within ${timeoutMs} ms`), timeoutMs);
    const socket = await Bun.connect<State>({
      hostname: host,
      port,
      data: state,
      socket: {
        data: (s, chunk) => onData(s, chunk),
        close: (s) => onEnd(s),
        error: (s) => onEnd(s),
      },
    });
    const ws = new TcpWs(socket, options.answerPings ?? true);
    state.ws = ws;
    socket.write(
      `GET ${pathAndQuery} HTTP/1.1\r\nHost: ${host}:${port}\r\nUpgrade: websocket\r\n` +
        "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n" +
        "Sec-WebSocket-Version: 13\r\n\r\n",
    );
    const error = await upgraded;
    clearTimeout(timer);
    state.settle = null;
    if (error !== null) {
      socket.end();
      throw new Error(error);
    }
    return ws;
  }

  /** Sends one text frame. */
  send(text: string): void {
    this.frame(OP_TEXT, Buffer.from(text));
  }

  /** Waits until `n` text frames have arrived in all, or throws after `ms`. */
  async waitFrames(n: number, ms = 3000): Promise<string[]> {
    const deadline = Date.now() + ms;
    while (this.frames.length < n) {
      if (this.ended || Date.now() >= deadline)
        throw new Error(`${this.frames.length}/${n} frames (ended: ${this.ended})`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, Math.max(1, deadline - Date.now()));
        this.waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
    return this.frames.slice(0, n);
  }

  /** Stops reading the socket: unread bytes stay in the kernel and the peer's writes stall. */
  pauseReading(): void {
    this.socket.pause();
  }

  end(): void {
    if (!this.ended) this.socket.end();
  }

  /** @internal */
  onFrame(op: number, payload: Buffer): void {
    if (op === OP_TEXT) this.frames.push(payload.toString("utf8"));
    else if (op === OP_PING) {
      this.pings++;
      if (this.answerPings) this.frame(OP_PONG, payload);
    } else if (op === OP_CLOSE) {
      this.closeCode = payload.length >= 2 ? payload.readUInt16BE(0) : null;
      this.socket.end();
    }
    this.wake();
  }

  /** @internal */
  onEnd(): void {
    if (this.ended) return;
    this.ended = true;
    this.resolveClosed();
    this.wake();
  }

  private wake(): void {
    for (const w of this.waiters.splice(0)) w();
  }

  private frame(op: number, payload: Buffer): void {
    const n = payload.length;
    const head = n < 126 ? 6 : n < 65536 ? 8 : 14;
    const out = Buffer.alloc(head + n); // zeroed: the mask key is 0, the payload is sent as is
    out[0] = 0x80 | op;
    if (n < 126) out[1] = 0x80 | n;
    else if (n < 65536) {
      out[1] = 0x80 | 126;
      out.writeUInt16BE(n, 2);
    } else {
      out[1] = 0x80 | 127;
      out.writeBigUInt64BE(BigInt(n), 2);
    }
    payload.copy(out, head);
    this.socket.write(out); // small frames only: the kernel always takes them whole
  }
}

function onEnd(s: Socket<State>): void {
  const st = s.data;
  if (!st.upgraded) st.settle?.("connection ended during the upgrade");
  st.ws?.onEnd();
}

function onData(s: Socket<State>, chunk: Buffer): void {
  const st = s.data;
  let buf = st.buf.length === 0 ? chunk : Buffer.concat([st.buf, chunk]);
  if (!st.upgraded) {
    const end = buf.indexOf("\r\n\r\n");
    if (end < 0) {
      st.buf = Buffer.from(buf);
      return;
    }
    const status = buf.toString("latin1", 0, end).split("\r\n")[0] ?? "";
    if (!status.startsWith("HTTP/1.1 101")) {
      st.settle?.(`upgrade refused: ${status}`);
      return;
    }
    st.upgraded = true;
    st.settle?.(null);
    buf = buf.subarray(end + 4);
  }
  let at = 0;
  for (let f = frameAt(buf, at); f !== null; f = frameAt(buf, at)) {
    at = f.end;
    st.ws?.onFrame(f.opcode, f.payload);
  }
  st.buf = Buffer.from(buf.subarray(at));
}
