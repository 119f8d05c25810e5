// The real server as a child process (`bun src/main.ts`): --help, refused settings, graceful
// SIGTERM, a taken port, JSON log lines without tokens, and the local secret across restarts.
import { afterAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { connect } from "node:net";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import type { Subprocess } from "bun";
import { Client, freePort } from "./helpers.ts";
import { SPEC_SETTINGS } from "./spec-settings.ts";

const ROOT = resolve(import.meta.dir, "..");
const ADMIN = "admin@example.com";
const ADMIN_PASSWORD = "process-admin-password";
const SECRET = "process-test-secret-key-0123456789abcdef";
/**
 * "Exits within a few seconds": the server gives sockets 3 s to finish the close handshake, then
 * closes them itself. The bound leaves room for a slow machine; a server that hangs still fails.
 */
const EXIT_MS = 10_000;
// Child processes that start, log in and stop within EXIT_MS: room for that per test.
setDefaultTimeout(40_000);

const dirs: string[] = [];
const children: Subprocess[] = [];
afterAll(() => {
  for (const p of children) if (p.exitCode === null && p.signalCode === null) p.kill("SIGKILL");
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), "kabar-proc-"));
  dirs.push(d);
  return d;
}

interface Child {
  proc: Subprocess<"ignore", "pipe", "pipe">;
  /** All of stdout / stderr, once the process has exited. */
  stdout: Promise<string>;
  stderr: Promise<string>;
  /** `http://127.0.0.1:PORT/api/v1` */
  base: string;
  /** `ws://127.0.0.1:PORT/api/v1/ws` */
  ws: string;
}

/** Runs `bun src/main.ts` with exactly `env` (plus PATH), from the repo root. */
function spawnServer(env: Record<string, string>, args: string[] = []): Child {
  const proc = Bun.spawn([process.execPath, "src/main.ts", ...args], {
    cwd: ROOT,
    env: { PATH: process.env.PATH ?? "/usr/bin:/bin", ...env },
    stdin: "ignore",
    stdout: "pipe",
    stderr: "pipe",
  });
  children.push(proc);
  return {
    proc,
    stdout: new Response(proc.stdout).text(),
    stderr: new Response(proc.stderr).text(),
    base: `http://127.0.0.1:${env.PORT}/api/v1`,
    ws: `ws://127.0.0.1:${env.PORT}/api/v1/ws`,
  };
}

/** Polls the health route until it answers 200; throws if the process exits first. */
async function waitReady(child: Child, ms = 10000): Promise<void> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if (child.proc.exitCode !== null)
      throw new Error(`server exited ${child.proc.exitCode}: ${await child.stderr}`);
    try {
      const res = await fetch(`${child.base}/ws/health`);
      if (res.status === 200) return;
    } catch {
      // not listening yet
    }
    await Bun.sleep(50);
  }
  throw new Error("server not ready in time");
}

/** Resolves with the exit code, or null when the process is still running after `ms`. */
async function exitWithin(child: Child, ms: number): Promise<number | null> {
  return Promise.race([child.proc.exited, Bun.sleep(ms).then(() => null)]);
}

async function login(base: string, password = ADMIN_PASSWORD): Promise<string> {
  const res = await fetch(`${base}/login/access-token`, {
    method: "POST",
    body: new URLSearchParams({ username: ADMIN, password }),
  });
  expect(res.status).toBe(200);
  const body = (await res.json()) as { access_token: string; token_type: string };
  expect(body.token_type).toBe("bearer");
  return body.access_token;
}

async function startedServer(extra: Record<string, string> = {}) {
  const port = await freePort();
  const dataDir = tempDir();
  const env = {
    HOST: "127.0.0.1",
    PORT: String(port),
    DATA_DIR: dataDir,
    SECRET_KEY: SECRET,
    FIRST_SUPERUSER: ADMIN,
    FIRST_SUPERUSER_PASSWORD: ADMIN_PASSWORD,
    ...extra,
  };
  const child = spawnServer(env);
  await waitReady(child);
  return { child, env, port, dataDir };
}

function stderrLines(text: string): string[] {
  return text.split("\n").filter((l) => l.trim() !== "");
}

describe("refusing to start", () => {
  test("--help prints every setting and exits 0", async () => {
    const child = spawnServer({ DATA_DIR: tempDir() }, ["--help"]);
    expect(await exitWithin(child, 10000)).toBe(0);
    const out = await child.stdout;
    for (const s of SPEC_SETTINGS.filter((x) => x.since === "1"))
      expect(out).toMatch(new RegExp(`^  ${s.env} +\\[`, "m"));
    expect(out).toContain("[8000]");
    expect(await child.stderr).toBe("");
  });

  test("PORT=abc exits 1 with one stderr line naming PORT", async () => {
    const child = spawnServer({ PORT: "abc", DATA_DIR: tempDir(), SECRET_KEY: SECRET });
    expect(await exitWithin(child, 10000)).toBe(1);
    const lines = stderrLines(await child.stderr);
    expect(lines).toHaveLength(1);
    expect(lines[0]).toContain("PORT");
    expect(await child.stdout).toBe("");
  });

  test("ENVIRONMENT=production without SECRET_KEY exits 1 naming SECRET_KEY", async () => {
    const child = spawnServer({
      ENVIRONMENT: "production",
      PORT: String(await freePort()),
      DATA_DIR: tempDir(),
      FIRST_SUPERUSER_PASSWORD: ADMIN_PASSWORD,
    });
    expect(await exitWithin(child, 10000)).toBe(1);
    const lines = stderrLines(await child.stderr);
    expect(lines).toHaveLength(1);
    expect(lines[0]).toContain("SECRET_KEY");
  });

  test("an unknown argument exits non-zero", async () => {
    const child = spawnServer({ DATA_DIR: tempDir() }, ["--port=1"]);
    const code = await exitWithin(child, 10000);
    expect(code).not.toBe(0);
    expect(code).not.toBeNull();
    expect(await child.stderr).toContain("--help");
  });
});

describe("a running server", () => {
  test("SIGTERM: sockets get 1001, exit 0 within a few seconds; logs are JSON without the token", async () => {
    const { child } = await startedServer();
    const tok = await login(child.base);
    const a = await Client.open(`${child.ws}?token=${tok}`);
    const b = await Client.open(`${child.ws}?token=${tok}&format=text`);
    expect(JSON.parse(await a.next()).type).toBe("welcome");
    expect(await b.next()).toStartWith("[System] Welcome, ");

    // A forged token is refused and must not be logged either.
    const [header, payload] = tok.split(".");
    const forged = `${header}.${payload}.${"A".repeat(43)}`;
    const bad = await Client.open(`${child.ws}?token=${forged}`);
    expect((await bad.waitClose()).code).toBe(1008);

    const t0 = performance.now();
    child.proc.kill("SIGTERM");
    const [ca, cb] = await Promise.all([a.waitClose(EXIT_MS), b.waitClose(EXIT_MS)]);
    expect(ca.code).toBe(1001);
    expect(cb.code).toBe(1001);
    expect(await exitWithin(child, EXIT_MS)).toBe(0);
    expect(performance.now() - t0).toBeLessThan(EXIT_MS);

    const out = await child.stdout;
    const lines = out.split("\n").filter((l) => l !== "");
    expect(lines.length).toBeGreaterThan(0);
    for (const line of lines) {
      const entry = JSON.parse(line) as Record<string, unknown>;
      expect(typeof entry.time).toBe("string");
      expect(typeof entry.level).toBe("string");
      expect(typeof entry.msg).toBe("string");
    }
    const signature = tok.split(".")[2] as string;
    expect(out).not.toContain(signature);
    expect(out).not.toContain(payload as string);
    expect(out).not.toContain(ADMIN_PASSWORD);
    expect(out).not.toContain(SECRET);
    expect(await child.stderr).toBe("");
  });

  test("SIGTERM with a client that never answers the close handshake still exits 0 within a few seconds", async () => {
    const { child, env } = await startedServer();
    const tok = await login(child.base);
    // A raw TCP client: completes the upgrade, then never reads or answers anything again.
    const sock = connect(Number(env.PORT), "127.0.0.1");
    const upgraded = new Promise<string>((ok) => sock.once("data", (d) => ok(String(d))));
    sock.write(
      [
        `GET /api/v1/ws?token=${tok} HTTP/1.1`,
        `Host: 127.0.0.1:${env.PORT}`,
        "Upgrade: websocket",
        "Connection: Upgrade",
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==",
        "Sec-WebSocket-Version: 13",
        "",
        "",
      ].join("\r\n"),
    );
    expect(await upgraded).toStartWith("HTTP/1.1 101");
    sock.pause();
    const health = (await (await fetch(`${child.base}/ws/health`)).json()) as {
      active_connections: number;
    };
    expect(health.active_connections).toBe(1);

    const t0 = performance.now();
    child.proc.kill("SIGTERM");
    expect(await exitWithin(child, EXIT_MS)).toBe(0);
    expect(performance.now() - t0).toBeLessThan(EXIT_MS);
    sock.destroy();
  });

  test("a second server on the same port exits 1 (address already in use); the first keeps serving", async () => {
    const { child, env } = await startedServer();
    const second = spawnServer(env);
    expect(await exitWithin(second, 10000)).toBe(1);
    const lines = stderrLines(await second.stderr);
    expect(lines).toHaveLength(1);
    expect(lines[0]).toContain("address already in use");
    expect(lines[0]).toContain(env.PORT);

    const res = await fetch(`${child.base}/ws/health`);
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({
      status: "healthy",
      service: "websocket",
      active_connections: 0,
      node: expect.stringMatching(/^[0-9a-f]{12}$/),
      redis: "off",
    });
    // The first server's database is still usable after the second one gave up.
    await login(child.base);

    child.proc.kill("SIGTERM");
    expect(await exitWithin(child, EXIT_MS)).toBe(0);
  });

  test("the local SECRET_KEY in DATA_DIR keeps tokens valid across a restart", async () => {
    const dataDir = tempDir();
    const run = async () => {
      const env = {
        HOST: "127.0.0.1",
        PORT: String(await freePort()),
        DATA_DIR: dataDir,
        FIRST_SUPERUSER: ADMIN,
        FIRST_SUPERUSER_PASSWORD: ADMIN_PASSWORD,
      };
      const child = spawnServer(env);
      await waitReady(child);
      return child;
    };

    const first = await run();
    const tok = await login(first.base);
    first.proc.kill("SIGTERM");
    expect(await exitWithin(first, EXIT_MS)).toBe(0);
    const firstOut = await first.stdout;
    expect(firstOut).toContain("SECRET_KEY not set");
    const key = (await Bun.file(join(dataDir, "secret_key")).text()).trim();
    expect(key.length).toBeGreaterThanOrEqual(32);
    expect(firstOut).not.toContain(key);

    const second = await run();
    const me = await fetch(`${second.base}/users/me`, {
      headers: { authorization: `Bearer ${tok}` },
    });
    expect(me.status).toBe(200);
    expect(((await me.json()) as { email: string }).email).toBe(ADMIN);
    const ws = await Client.open(`${second.ws}?token=${tok}`);
    expect(JSON.parse(await ws.next()).type).toBe("welcome");
    second.proc.kill("SIGINT"); // Ctrl-C stops it the same way
    expect((await ws.waitClose(EXIT_MS)).code).toBe(1001);
    expect(await exitWithin(second, EXIT_MS)).toBe(0);
    expect(await second.stdout).not.toContain("SECRET_KEY not set");
  });
});

/** The open-files table's size of a process (`FDSize` in /proc/PID/status), Linux only. */
function fdTableSize(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, "utf8");
  return Number(/^FDSize:\s+(\d+)/m.exec(status)?.[1] ?? Number.NaN);
}

describe.if(process.platform === "linux")("FD_PREALLOCATE", () => {
  test("the open-files table is grown before the server listens; 0 leaves it as it was", async () => {
    // 3,000 descriptors: a table of 4,096 slots (the kernel doubles it from 64), more than a
    // fresh process with a few dozen files open has.
    const grown = await startedServer({ FD_PREALLOCATE: "3000" });
    const plain = await startedServer({ FD_PREALLOCATE: "0" });
    try {
      expect(fdTableSize(grown.child.proc.pid)).toBeGreaterThanOrEqual(3000);
      expect(fdTableSize(plain.child.proc.pid)).toBeLessThan(3000);
      // Nothing of the growing is left open: both serve, and hold as many descriptors.
      const open = (pid: number) => readdirSync(`/proc/${pid}/fd`).length;
      expect(Math.abs(open(grown.child.proc.pid) - open(plain.child.proc.pid))).toBeLessThan(20);
      const tok = await login(grown.child.base);
      const ws = await Client.open(`${grown.child.ws}?token=${tok}`);
      expect(JSON.parse(await ws.next()).type).toBe("welcome");
      ws.close();
    } finally {
      grown.child.proc.kill("SIGTERM");
      plain.child.proc.kill("SIGTERM");
      await Promise.all([exitWithin(grown.child, EXIT_MS), exitWithin(plain.child, EXIT_MS)]);
    }
  });
});
