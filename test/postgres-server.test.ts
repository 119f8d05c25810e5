// A real Kabar server on PostgreSQL: login and a room message end to end; a PostgreSQL that
// cannot be reached at start (one line, exit 1); PostgreSQL going away while running (through a
// TCP proxy that the test cuts: the machine's server is shared and keeps running) and coming back.
import { afterAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import {
  ADMIN_EMAIL,
  ADMIN_PASSWORD,
  adminUser,
  Client,
  createUser,
  freePort,
  login,
  SECRET,
  startServer,
  type TestServer,
} from "./helpers.ts";
import {
  freshDatabase,
  pgAddress,
  pgClient,
  pgTestsRun,
  type TestDatabase,
  viaPort,
} from "./postgres.ts";
import { tcpProxy } from "./tcp-proxy.ts";

const ROOT = resolve(import.meta.dir, "..");
/** Each test hashes several passwords (argon2id, ~0.1 s each, more on a busy machine). */
const SLOW = 30_000;
const cleanup: Array<() => Promise<void> | void> = [];
afterAll(async () => {
  for (const f of cleanup.reverse()) await f();
});

/** The status line of a WebSocket upgrade request, read over a raw TCP socket. */
async function upgradeStatus(port: number, path: string): Promise<string> {
  let text = "";
  const { promise, resolve: done } = Promise.withResolvers<string>();
  const socket = await Bun.connect({
    hostname: "127.0.0.1",
    port,
    socket: {
      data(_s, bytes) {
        text += new TextDecoder().decode(bytes);
        if (text.includes("\r\n\r\n")) done(text);
      },
      close() {
        done(text);
      },
      error() {
        done(text);
      },
    },
  });
  socket.write(
    `GET ${path} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
      "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
  );
  const head = await Promise.race([promise, Bun.sleep(5000).then(() => text)]);
  socket.end();
  return head;
}

const authed = (tok: string) => ({ headers: { authorization: `Bearer ${tok}` } });

test(
  "a PostgreSQL that cannot be reached at start: one stderr line, exit 1, no password",
  async () => {
    const dir = mkdtempSync(join(tmpdir(), "kabar-pg-start-"));
    cleanup.push(() => rmSync(dir, { recursive: true, force: true }));
    const dbPort = await freePort();
    const proc = Bun.spawn([process.execPath, "src/main.ts"], {
      cwd: ROOT,
      env: {
        PATH: process.env.PATH ?? "/usr/bin:/bin",
        HOST: "127.0.0.1",
        PORT: String(await freePort()),
        DATA_DIR: dir,
        SECRET_KEY: SECRET,
        DATABASE_URL: `postgresql://kabar:sekrit@127.0.0.1:${dbPort}/kabar`,
      },
      stdin: "ignore",
      stdout: "pipe",
      stderr: "pipe",
    });
    const code = await Promise.race([proc.exited, Bun.sleep(15_000).then(() => null)]);
    if (code === null) proc.kill("SIGKILL");
    expect(code).toBe(1);
    const lines = (await new Response(proc.stderr).text()).split("\n").filter((l) => l.trim());
    expect(lines).toHaveLength(1);
    expect(lines[0]).toContain("PostgreSQL");
    expect(lines[0]).toContain(`127.0.0.1:${dbPort}`);
    expect(lines[0]).not.toContain("sekrit");
    expect(await new Response(proc.stdout).text()).not.toContain("sekrit");
  },
  SLOW,
);

const PG = await pgTestsRun();

describe.if(PG)("on PostgreSQL", () => {
  const database = async (): Promise<TestDatabase> => {
    const db = await freshDatabase();
    cleanup.push(() => db.drop());
    return db;
  };
  const server = async (env: Record<string, string>): Promise<TestServer> => {
    const srv = await startServer(env);
    cleanup.push(() => srv.stop());
    return srv;
  };

  test(
    "end to end: users in PostgreSQL, login, a room message over WebSocket",
    async () => {
      const db = await database();
      const srv = await server({ DATABASE_URL: db.url, BOT_ENABLED: "false" });
      const ann = await createUser(srv);
      const bob = await createUser(srv);
      const a = await Client.connect(srv, ann.token);
      const b = await Client.connect(srv, bob.token);
      expect(JSON.parse(await a.ask({ type: "create_room", room_name: "pg" }))).toMatchObject({
        type: "room_created",
        room: "pg",
      });
      for (const c of [a, b]) {
        c.send({ type: "join_room", room_name: "pg" });
        expect(await c.json()).toMatchObject({ type: "room_joined", room: "pg" });
        expect(await c.json()).toMatchObject({ type: "room_update", room: "pg" });
      }
      a.send({ type: "message", content: "halo" });
      const echo = await a.json();
      expect(echo).toMatchObject({ type: "message", room: "pg", from: ann.id, content: "halo" });
      expect(await b.json()).toMatchObject({ type: "message", from: ann.id, id: echo.id });
      a.close();
      b.close();
      // The users are rows of this database, not of an SQLite file.
      const sql = pgClient(db.url);
      const rows = await sql<{ email: string }[]>`SELECT email FROM users ORDER BY seq`;
      await sql.close();
      expect(rows.map((r) => r.email)).toEqual([ADMIN_EMAIL, ann.email, bob.email]);
    },
    SLOW,
  );

  test(
    "two nodes starting together on one empty database: both start, one superuser",
    async () => {
      const db = await database();
      const [one, two] = await Promise.all([
        server({ DATABASE_URL: db.url }),
        server({ DATABASE_URL: db.url }),
      ]);
      for (const srv of [one, two])
        expect((await login(srv, ADMIN_EMAIL, ADMIN_PASSWORD)).status).toBe(200);
      const sql = pgClient(db.url);
      const [row] = await sql<{ n: string }[]>`SELECT count(*) AS n FROM users`;
      await sql.close();
      expect(row?.n).toBe("1");
    },
    SLOW,
  );

  test(
    "PostgreSQL down while running: 503s, sockets refused, then back without restart",
    async () => {
      const db = await database();
      const proxy = tcpProxy(pgAddress(db.url));
      cleanup.push(() => proxy.stop());
      const srv = await server({ DATABASE_URL: viaPort(db.url, proxy.port) });
      const admin = await adminUser(srv); // /users/me: the admin is now in the node's memory
      const ann = await createUser(srv); // logged in, never looked up by id: not in memory
      const bob = await createUser(srv);
      const live = await Client.connect(srv, bob.token); // a socket opened before the outage

      proxy.cut();
      const me = await fetch(`${srv.api}/users/me`, authed(ann.token));
      expect(me.status).toBe(503);
      expect(me.headers.get("retry-after")).toBe("5");
      expect(await me.json()).toEqual({ detail: "Service temporarily unavailable" });
      const refusedLogin = await login(srv, ann.email, ann.password);
      expect(refusedLogin.status).toBe(503);
      expect(await refusedLogin.json()).toEqual({ detail: "Service temporarily unavailable" });
      // A new socket of a user the node does not hold in memory: HTTP 503 before the upgrade...
      const head = await upgradeStatus(srv.port, `/api/v1/ws?token=${ann.token}`);
      expect(head).toStartWith("HTTP/1.1 503");
      expect(head.toLowerCase()).toContain("retry-after: 5");
      // ...which a WebSocket client sees as a failed connection, never a welcome.
      const refused = await Client.open(`${srv.ws}?token=${encodeURIComponent(ann.token)}`);
      const closed = await refused.waitClose();
      expect(closed.code).not.toBe(1000);
      expect(refused.inbox).toEqual([]);
      // Nothing crashed: the process answers, sockets that were open keep working, and users in
      // memory keep authenticating (nobody can change them while the database is down).
      const health = await fetch(`${srv.api}/ws/health`);
      expect(health.status).toBe(200);
      expect(JSON.parse(await live.ask({ type: "list_rooms" }))).toMatchObject({ type: "rooms" });
      expect((await fetch(`${srv.api}/users/me`, authed(admin.token))).status).toBe(200);
      expect(srv.logs.some((l) => l.includes("user store unavailable"))).toBe(true);

      proxy.restore();
      const back = await fetch(`${srv.api}/users/me`, authed(ann.token));
      expect(back.status).toBe(200);
      expect(((await back.json()) as { email: string }).email).toBe(ann.email);
      expect((await login(srv, ann.email, ann.password)).status).toBe(200);
      expect((await login(srv, ADMIN_EMAIL, ADMIN_PASSWORD)).status).toBe(200);
      const carol = await createUser(srv);
      const again = await Client.connect(srv, carol.token);
      expect(JSON.parse(await again.ask({ type: "list_rooms" }))).toMatchObject({ type: "rooms" });
      again.close();
      live.close();
    },
    SLOW,
  );
});
