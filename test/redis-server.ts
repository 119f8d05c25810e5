// A real `redis-server` of the test's own, on a free port, that a test can kill and restart.
// Where redis-server is missing the Redis tests skip with a clear line, except under CI=true,
// where they must run (`.ci/run` installs it).

import { afterAll, beforeAll } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { RedisClient, Subprocess } from "bun";
import { connectRedis } from "../src/cluster/redis.ts";
import { freePort } from "./helpers.ts";

export const REDIS_BIN = Bun.which("redis-server") ?? "/usr/bin/redis-server";

/** True when redis-server can be started here. Under CI=true a missing one is an error. */
export function redisAvailable(): boolean {
  const found = Bun.which("redis-server") !== null || Bun.file(REDIS_BIN).size > 0;
  if (!found) {
    if (process.env.CI === "true") throw new Error("redis-server is required under CI=true");
    console.warn("skip: redis-server not found; the Redis tests are skipped");
  }
  return found;
}

export interface RedisServer {
  port: number;
  url: string;
  /** SIGKILLs the server (the port stays the same for restart()). */
  kill(): Promise<void>;
  /** Starts it again on the same port, empty (nothing is persisted). */
  restart(): Promise<void>;
  stop(): Promise<void>;
}

async function waitReady(port: number, proc: Subprocess): Promise<void> {
  const deadline = Date.now() + 5_000;
  while (Date.now() < deadline) {
    if (proc.exitCode !== null) throw new Error(`redis-server exited with ${proc.exitCode}`);
    try {
      const sock = await Bun.connect({
        hostname: "127.0.0.1",
        port,
        socket: { data() {} },
      });
      sock.end();
      return;
    } catch {
      await Bun.sleep(20);
    }
  }
  throw new Error(`redis-server on ${port} did not start`);
}

export async function startRedis(): Promise<RedisServer> {
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), "kabar-redis-"));
  let proc: Subprocess | null = null;
  const spawn = async () => {
    proc = Bun.spawn(
      [
        REDIS_BIN,
        "--port",
        String(port),
        "--bind",
        "127.0.0.1",
        "--save",
        "",
        "--appendonly",
        "no",
        "--dir",
        dir,
        "--loglevel",
        "warning",
      ],
      { stdout: "ignore", stderr: "inherit" },
    );
    await waitReady(port, proc);
  };
  const kill = async () => {
    const p = proc as Subprocess | null;
    if (p === null) return;
    p.kill("SIGKILL");
    await p.exited;
    proc = null;
  };
  await spawn();
  return {
    port,
    url: `redis://127.0.0.1:${port}`,
    kill,
    restart: spawn,
    async stop() {
      await kill();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/**
 * One redis-server for the tests of a describe block or file: started before them, stopped after
 * them, with every client made by `client()` (connected as a node connects) closed first.
 */
export function sharedRedis(): { readonly server: RedisServer; client(): Promise<RedisClient> } {
  let server: RedisServer | undefined;
  const clients: RedisClient[] = [];
  beforeAll(async () => {
    server = await startRedis();
  });
  afterAll(async () => {
    for (const c of clients) c.close();
    await server?.stop();
  });
  return {
    get server() {
      if (server === undefined) throw new Error("sharedRedis: used before its beforeAll ran");
      return server;
    },
    async client() {
      const c = await connectRedis(this.server.url);
      clients.push(c);
      return c;
    },
  };
}
