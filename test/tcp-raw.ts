// Raw TCP for the tests that break the WebSocket protocol on purpose (test/ws-abuse.test.ts,
// test/connect-limit.test.ts): a byte-level connection over node:net (with a chosen loopback
// source address), the upgrade request, a frame builder that can set any bit wrong, and a parser
// for what the server sends back. test/tcp-ws.ts is the well-behaved counterpart.
import { randomBytes } from "node:crypto";
import { connect, type Socket } from "node:net";

export interface ServerFrame {
  fin: boolean;
  opcode: number;
  payload: Buffer;
}

/** One TCP connection whose received bytes are kept; `ended` resolves when it closes. */
export class RawConn {
  received = Buffer.alloc(0);
  endedAt: number | null = null;
  readonly ended: Promise<void>;
  private waiters: Array<() => void> = [];

  private constructor(readonly socket: Socket) {
    this.ended = new Promise((resolve) => {
      const done = () => {
        if (this.endedAt === null) this.endedAt = performance.now();
        this.wake();
        resolve();
      };
      socket.on("close", done);
      socket.on("error", done);
    });
    socket.on("data", (chunk: Buffer) => {
      this.received = Buffer.concat([this.received, chunk]);
      this.wake();
    });
  }

  /** Connects to 127.0.0.1:port (from `localAddress`, a 127.x.y.z, when given). */
  static open(port: number, localAddress?: string, timeoutMs = 5000): Promise<RawConn> {
    return new Promise((resolve, reject) => {
      const socket = connect({
        host: "127.0.0.1",
        port,
        ...(localAddress ? { localAddress } : {}),
      });
      const timer = setTimeout(() => {
        socket.destroy();
        reject(new Error(`no TCP connect within ${timeoutMs} ms`));
      }, timeoutMs);
      socket.once("connect", () => {
        clearTimeout(timer);
        socket.setNoDelay(true);
        resolve(new RawConn(socket));
      });
      socket.once("error", (e) => {
        clearTimeout(timer);
        reject(e);
      });
    });
  }

  get isEnded(): boolean {
    return this.endedAt !== null;
  }

  write(data: string | Buffer): void {
    if (!this.isEnded) this.socket.write(data);
  }

  destroy(): void {
    this.socket.destroy();
  }

  /** Waits until `done(received)` holds or the connection ends; false after `ms`. */
  async until(done: (received: Buffer) => boolean, ms: number): Promise<boolean> {
    const deadline = performance.now() + ms;
    while (!done(this.received)) {
      if (this.isEnded) return done(this.received);
      const left = deadline - performance.now();
      if (left <= 0) return false;
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
    return true;
  }

  /** The HTTP status line and headers (lower-cased names) once the head has arrived. */
  async head(
    ms = 3000,
  ): Promise<{ status: number; headers: Record<string, string>; rest: Buffer }> {
    const ok = await this.until((b) => b.includes("\r\n\r\n"), ms);
    if (!ok) throw new Error(`no HTTP answer within ${ms} ms (got ${this.received.length} bytes)`);
    const end = this.received.indexOf("\r\n\r\n");
    const lines = this.received.toString("latin1", 0, end).split("\r\n");
    const status = Number((lines[0] ?? "").split(" ")[1]);
    const headers: Record<string, string> = {};
    for (const l of lines.slice(1)) {
      const i = l.indexOf(":");
      if (i > 0) headers[l.slice(0, i).trim().toLowerCase()] = l.slice(i + 1).trim();
    }
    return { status, headers, rest: this.received.subarray(end + 4) };
  }

  /** Server frames after the 101 head, parsed from everything received so far. */
  frames(): ServerFrame[] {
    const end = this.received.indexOf("\r\n\r\n");
    return end < 0 ? [] : parseFrames(this.received.subarray(end + 4));
  }

  /** Waits for a server frame matching `pick`, or the end; undefined after `ms`. */
  async frame(pick: (f: ServerFrame) => boolean, ms = 3000): Promise<ServerFrame | undefined> {
    await this.until(() => this.frames().some(pick), ms);
    return this.frames().find(pick);
  }

  /** The close code of the server's close frame (null: none yet, or no code in it). */
  closeCode(): number | null {
    const close = this.frames().find((f) => f.opcode === OP.close);
    return close && close.payload.length >= 2 ? close.payload.readUInt16BE(0) : null;
  }

  private wake(): void {
    for (const w of this.waiters.splice(0)) w();
  }
}

export const OP = { cont: 0x0, text: 0x1, binary: 0x2, close: 0x8, ping: 0x9, pong: 0xa } as const;

/** The upgrade request for `pathAndQuery`, with optional extra header lines. */
export function upgradeRequest(pathAndQuery: string, extra: string[] = []): string {
  return [
    `GET ${pathAndQuery} HTTP/1.1`,
    "Host: 127.0.0.1",
    "Upgrade: websocket",
    "Connection: Upgrade",
    `Sec-WebSocket-Key: ${randomBytes(16).toString("base64")}`,
    "Sec-WebSocket-Version: 13",
    ...extra,
    "",
    "",
  ].join("\r\n");
}

export interface FrameSpec {
  opcode: number;
  payload?: Buffer | string;
  fin?: boolean;
  /** RSV1..3 as bits 0b100, 0b010, 0b001. */
  rsv?: number;
  /** false: send unmasked (a client must mask). Default: masked with a random key. */
  masked?: boolean;
}

/** One client frame, any field allowed to break the rules. */
export function frame(spec: FrameSpec): Buffer {
  const payload =
    typeof spec.payload === "string"
      ? Buffer.from(spec.payload)
      : (spec.payload ?? Buffer.alloc(0));
  const masked = spec.masked ?? true;
  const n = payload.length;
  const ext = n < 126 ? 0 : n < 65536 ? 2 : 8;
  const head = Buffer.alloc(2 + ext + (masked ? 4 : 0));
  head[0] = ((spec.fin ?? true) ? 0x80 : 0) | ((spec.rsv ?? 0) << 4) | spec.opcode;
  const len = n < 126 ? n : n < 65536 ? 126 : 127;
  head[1] = (masked ? 0x80 : 0) | len;
  if (ext === 2) head.writeUInt16BE(n, 2);
  else if (ext === 8) head.writeBigUInt64BE(BigInt(n), 2);
  if (!masked) return Buffer.concat([head, payload]);
  const key = randomBytes(4);
  key.copy(head, 2 + ext);
  const body = Buffer.alloc(n);
  for (let i = 0; i < n; i++) body[i] = (payload[i] as number) ^ (key[i & 3] as number);
  return Buffer.concat([head, body]);
}

/** A close frame with `code` (and an optional reason). */
export function closeFrame(code: number, reason = ""): Buffer {
  const payload = Buffer.alloc(2 + Buffer.byteLength(reason));
  payload.writeUInt16BE(code, 0);
  payload.write(reason, 2);
  return frame({ opcode: OP.close, payload });
}

/** The server frame (unmasked) starting at `at` in `buf` and where it ends; null if partial. */
export function frameAt(buf: Buffer, at: number): (ServerFrame & { end: number }) | null {
  if (buf.length - at < 2) return null;
  const b0 = buf[at] as number;
  let len = (buf[at + 1] as number) & 0x7f;
  let head = 2;
  if (len === 126) {
    if (buf.length - at < 4) return null;
    len = buf.readUInt16BE(at + 2);
    head = 4;
  } else if (len === 127) {
    if (buf.length - at < 10) return null;
    len = Number(buf.readBigUInt64BE(at + 2));
    head = 10;
  }
  if (buf.length - at < head + len) return null;
  return {
    fin: (b0 & 0x80) !== 0,
    opcode: b0 & 0x0f,
    payload: Buffer.from(buf.subarray(at + head, at + head + len)),
    end: at + head + len,
  };
}

/** Server frames (unmasked) in `buf`; a trailing partial frame is left out. */
export function parseFrames(buf: Buffer): ServerFrame[] {
  const out: ServerFrame[] = [];
  let at = 0;
  for (let f = frameAt(buf, at); f !== null; f = frameAt(buf, at)) {
    out.push({ fin: f.fin, opcode: f.opcode, payload: f.payload });
    at = f.end;
  }
  return out;
}
