// Test helpers: a real Kabar server on port 0 in a temp folder, real users made through the
// REST API, and a real WebSocket client with an awaitable inbox.
import { createHmac } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createKabar, type Kabar } from "../src/app.ts";
import { type Config, loadConfig } from "../src/config.ts";
import { createLogger } from "../src/log.ts";
import type { Handlers } from "../src/ws/handler.ts";
import { auditLogs, auditSecret } from "./log-audit.ts";

export const ADMIN_EMAIL = "admin@example.com";
export const ADMIN_PASSWORD = "admin-password-123";
export const SECRET = "test-secret-key-that-is-long-enough-0123456789";

export interface TestServer {
  kabar: Kabar;
  config: Config;
  port: number;
  /** `http://127.0.0.1:PORT/api/v1` */
  api: string;
  /** `ws://127.0.0.1:PORT/api/v1/ws` */
  ws: string;
  /** Every log line the server wrote. */
  logs: string[];
  dir: string;
  stop(): Promise<void>;
}

export interface StartOptions {
  handlers?: Handlers;
}

/** Starts a real server on 127.0.0.1, port 0, with its own SQLite file in a temp folder. */
export async function startServer(
  env: Record<string, string> = {},
  options: StartOptions = {},
): Promise<TestServer> {
  const dir = mkdtempSync(join(tmpdir(), "kabar-test-"));
  const config = loadConfig({
    HOST: "127.0.0.1",
    PORT: "0",
    SECRET_KEY: SECRET,
    DATA_DIR: dir,
    FIRST_SUPERUSER: ADMIN_EMAIL,
    FIRST_SUPERUSER_PASSWORD: ADMIN_PASSWORD,
    LOG_LEVEL: "debug",
    ...env,
  });
  const logs: string[] = [];
  auditLogs(logs);
  auditSecret(config.secretKey);
  auditSecret(config.firstSuperuserPassword);
  const log = createLogger(config.logLevel, (line) => logs.push(line));
  const kabar = await createKabar(config, {
    log,
    ...(options.handlers ? { handlers: options.handlers } : {}),
  });
  const server = kabar.listen();
  const port = server.port as number;
  return {
    kabar,
    config,
    port,
    api: `http://127.0.0.1:${port}/api/v1`,
    ws: `ws://127.0.0.1:${port}/api/v1/ws`,
    logs,
    dir,
    async stop() {
      await kabar.stop(1000);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

export async function login(
  srv: Pick<TestServer, "api">,
  email: string,
  password: string,
): Promise<Response> {
  auditSecret(password);
  return fetch(`${srv.api}/login/access-token`, {
    method: "POST",
    body: new URLSearchParams({ username: email, password }),
  });
}

export async function token(
  srv: Pick<TestServer, "api">,
  email: string,
  password: string,
): Promise<string> {
  const res = await login(srv, email, password);
  if (res.status !== 200) throw new Error(`login failed: ${res.status} ${await res.text()}`);
  const issued = ((await res.json()) as { access_token: string }).access_token;
  auditSecret(issued);
  return issued;
}

export interface TestUser {
  id: string;
  email: string;
  password: string;
  token: string;
}

let userSeq = 0;

/** A user made through `POST /users/` as the superuser, then logged in. */
export async function createUser(
  srv: Pick<TestServer, "api">,
  fields: { superuser?: boolean; email?: string; password?: string } = {},
): Promise<TestUser> {
  const admin = await token(srv, ADMIN_EMAIL, ADMIN_PASSWORD);
  const email = fields.email ?? `user${++userSeq}-${Date.now()}@example.com`;
  const password = fields.password ?? "password-123";
  const res = await fetch(`${srv.api}/users/`, {
    method: "POST",
    headers: { authorization: `Bearer ${admin}`, "content-type": "application/json" },
    body: JSON.stringify({ email, password, is_superuser: fields.superuser ?? false }),
  });
  if (res.status !== 200) throw new Error(`create user failed: ${res.status} ${await res.text()}`);
  const { id } = (await res.json()) as { id: string };
  return { id, email, password, token: await token(srv, email, password) };
}

export async function adminUser(srv: Pick<TestServer, "api">): Promise<TestUser> {
  const t = await token(srv, ADMIN_EMAIL, ADMIN_PASSWORD);
  const me = (await (
    await fetch(`${srv.api}/users/me`, { headers: { authorization: `Bearer ${t}` } })
  ).json()) as { id: string };
  return { id: me.id, email: ADMIN_EMAIL, password: ADMIN_PASSWORD, token: t };
}

export interface Closed {
  code: number;
  reason: string;
}

/** The sentinel of `Client.stray()`: a command every socket may send, answered in order. */
export const SENTINEL = { type: "list_rooms" } as const;

/** True for the answer to `SENTINEL`: a `rooms` event (JSON) or its line (text format). */
export function isSentinelAnswer(frame: string, format: "json" | "text"): boolean {
  if (format === "text")
    return frame === "[System] No active rooms." || frame.startsWith("[System] Active Rooms:\n");
  try {
    return (JSON.parse(frame) as { type?: unknown }).type === "rooms";
  } catch {
    return false;
  }
}

let pingSeq = 0;

/** A real WebSocket client whose received frames can be awaited one by one. */
export class Client {
  readonly inbox: string[] = [];
  private waiters: Array<(frame: string) => void> = [];
  readonly closed: Promise<Closed>;
  /** The socket's `format` (from the URL; JSON by default). */
  readonly format: "json" | "text";

  private constructor(readonly ws: WebSocket) {
    this.format = new URL(ws.url).searchParams.get("format") === "text" ? "text" : "json";
    ws.onmessage = (e) => {
      const frame = String(e.data);
      const waiter = this.waiters.shift();
      if (waiter) waiter(frame);
      else this.inbox.push(frame);
    };
    this.closed = new Promise((resolve) => {
      ws.addEventListener("close", (e) => resolve({ code: e.code, reason: e.reason }));
    });
  }

  /** Opens a socket; resolves once open (or closed, for refused sockets). */
  static async open(url: string, init?: { headers?: Record<string, string> }): Promise<Client> {
    const ws = init ? new WebSocket(url, init as unknown as string[]) : new WebSocket(url);
    const client = new Client(ws);
    await new Promise<void>((resolve) => {
      ws.addEventListener("open", () => resolve(), { once: true });
      ws.addEventListener("close", () => resolve(), { once: true });
      ws.addEventListener("error", () => resolve(), { once: true });
    });
    return client;
  }

  /** Connects with `?token=` and the given format, and reads the welcome frame. */
  static async connect(
    srv: Pick<TestServer, "ws">,
    tok: string,
    format: "json" | "text" = "json",
  ): Promise<Client> {
    const client = await Client.open(`${srv.ws}?token=${encodeURIComponent(tok)}&format=${format}`);
    await client.next();
    return client;
  }

  send(frame: unknown): void {
    this.ws.send(typeof frame === "string" ? frame : JSON.stringify(frame));
  }

  /** The next frame, or throws after `ms`. */
  next(ms = 2000): Promise<string> {
    const ready = this.inbox.shift();
    if (ready !== undefined) return Promise.resolve(ready);
    return new Promise((resolve, reject) => {
      const waiter = (frame: string) => {
        clearTimeout(timer);
        resolve(frame);
      };
      const timer = setTimeout(() => {
        this.waiters = this.waiters.filter((w) => w !== waiter);
        reject(new Error(`no frame within ${ms} ms`));
      }, ms);
      this.waiters.push(waiter);
    });
  }

  /** The next frame parsed as a JSON event. */
  async json(ms = 2000): Promise<Record<string, unknown>> {
    return JSON.parse(await this.next(ms)) as Record<string, unknown>;
  }

  /** The next `n` frames. */
  async take(n: number, ms = 2000): Promise<string[]> {
    const out: string[] = [];
    for (let i = 0; i < n; i++) out.push(await this.next(ms));
    return out;
  }

  /**
   * The frames that arrive before the answer to a sentinel sent now: `[]` when nothing else was
   * on its way. The sentinel (`SENTINEL`, list_rooms) is answered after every frame the server
   * sent this socket before it read the sentinel, so call this once the action that might
   * (wrongly) send more has been answered: on this socket, or on another one whose answer the
   * server sends after the frames in question. It costs a rate-limit token.
   *
   * `{ ping: true }`: a WebSocket ping instead, answered by the server's pong; it costs no token
   * (for a socket whose bucket is empty) but only covers frames the server sent synchronously
   * while reading earlier frames (refusals, synchronous handlers), not answers of async handlers.
   */
  async stray(options: { ping?: boolean; ms?: number } = {}): Promise<string[]> {
    const ms = options.ms ?? 2000;
    const out = this.inbox.splice(0);
    if (options.ping) {
      const payload = `stray-${++pingSeq}`;
      const ponged = new Promise<boolean>((resolve) => {
        const timer = setTimeout(() => resolve(false), ms);
        const onPong = (e: MessageEvent) => {
          if (String(e.data) !== payload) return;
          clearTimeout(timer);
          this.ws.removeEventListener("pong", onPong as EventListener);
          resolve(true);
        };
        this.ws.addEventListener("pong", onPong as EventListener);
      });
      this.ws.ping(payload);
      if (!(await ponged)) throw new Error(`no pong within ${ms} ms`);
      return out.concat(this.inbox.splice(0));
    }
    this.send(SENTINEL);
    for (;;) {
      const frame = await this.next(ms);
      if (isSentinelAnswer(frame, this.format)) return out;
      out.push(frame);
    }
  }

  /** Sends a command and returns the reply frame. */
  async ask(frame: unknown, ms = 2000): Promise<string> {
    this.send(frame);
    return this.next(ms);
  }

  /** Waits for the close frame, or throws after `ms`. */
  async waitClose(ms = 3000): Promise<Closed> {
    const timeout = Bun.sleep(ms).then(() => {
      throw new Error(`socket not closed within ${ms} ms`);
    });
    return Promise.race([this.closed, timeout]);
  }

  close(): void {
    this.ws.close();
  }
}

const b64 = (v: unknown) => Buffer.from(JSON.stringify(v)).toString("base64url");

/** Signs an HS256 token with any secret and claims, for forged and expired cases. */
export function signToken(payload: Record<string, unknown>, secret = SECRET): string {
  const body = `${b64({ alg: "HS256", typ: "JWT" })}.${b64(payload)}`;
  return `${body}.${createHmac("sha256", secret).update(body).digest("base64url")}`;
}

/** An unsigned `alg: none` token. */
export function noneToken(payload: Record<string, unknown>): string {
  return `${b64({ alg: "none", typ: "JWT" })}.${b64(payload)}.`;
}

/** A port that was free a moment ago: listen on 0, read the port, close. */
export function freePort(): Promise<number> {
  return new Promise((ok, fail) => {
    const srv = createServer();
    srv.once("error", fail);
    srv.listen(0, "127.0.0.1", () => {
      const addr = srv.address();
      const port = typeof addr === "object" && addr ? addr.port : 0;
      srv.close(() => ok(port));
    });
  });
}
