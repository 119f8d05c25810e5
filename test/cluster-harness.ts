// Cluster tests: Kabar nodes as separate processes (`bun src/main.ts`), sharing one
// redis-server of the test's own and one fresh PostgreSQL database. Each node is a `TestNode`
// that the rest of the test helpers accept where they take a server (`api`, `ws`).
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import type { Subprocess } from "bun";
import { ADMIN_EMAIL, ADMIN_PASSWORD, freePort, SECRET } from "./helpers.ts";
import { auditLogs } from "./log-audit.ts";
import { freshDatabase, pgTestsRun, type TestDatabase } from "./postgres.ts";
import { type RedisServer, redisAvailable, startRedis } from "./redis-server.ts";

const ROOT = resolve(import.meta.dir, "..");

export interface TestNode {
  port: number;
  /** `http://127.0.0.1:PORT/api/v1` */
  api: string;
  /** `ws://127.0.0.1:PORT/api/v1/ws` */
  ws: string;
  proc: Subprocess<"ignore", "pipe", "pipe">;
  /** Log lines so far (JSON lines on stdout). */
  logs: string[];
  /** The node id from its health answer. */
  id: string;
  kill(signal?: NodeJS.Signals): Promise<void>;
}

export interface TestCluster {
  redis: RedisServer;
  db: TestDatabase;
  nodes: TestNode[];
  /** Starts one more node (same Redis, database and secret). */
  start(env?: Record<string, string>): Promise<TestNode>;
  stop(): Promise<void>;
}

/** Whether the cluster tests can run here (redis-server and PostgreSQL; required under CI). */
export async function clusterTestsRun(): Promise<boolean> {
  return redisAvailable() && (await pgTestsRun());
}

async function readLines(stream: ReadableStream<Uint8Array>, into: string[]): Promise<void> {
  const decoder = new TextDecoder();
  let rest = "";
  for await (const chunk of stream) {
    rest += decoder.decode(chunk, { stream: true });
    const lines = rest.split("\n");
    rest = lines.pop() ?? "";
    into.push(...lines);
  }
}

async function waitHealthy(node: Omit<TestNode, "id">, ms = 15_000): Promise<string> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if (node.proc.exitCode !== null)
      throw new Error(`node exited ${node.proc.exitCode}: ${node.logs.join("\n")}`);
    try {
      const res = await fetch(`${node.api}/ws/health`);
      if (res.status === 200) return ((await res.json()) as { node: string }).node;
    } catch {
      // not listening yet
    }
    await Bun.sleep(50);
  }
  throw new Error("node not ready in time");
}

export async function startCluster(
  count: number,
  env: Record<string, string> = {},
): Promise<TestCluster> {
  const redis = await startRedis();
  const db = await freshDatabase();
  const dirs: string[] = [];
  const nodes: TestNode[] = [];
  const start = async (extra: Record<string, string> = {}): Promise<TestNode> => {
    const port = await freePort();
    const dir = mkdtempSync(join(tmpdir(), "kabar-node-"));
    dirs.push(dir);
    const proc = Bun.spawn([process.execPath, "src/main.ts"], {
      cwd: ROOT,
      env: {
        PATH: process.env.PATH ?? "/usr/bin:/bin",
        HOST: "127.0.0.1",
        PORT: String(port),
        DATA_DIR: dir,
        SECRET_KEY: SECRET,
        FIRST_SUPERUSER: ADMIN_EMAIL,
        FIRST_SUPERUSER_PASSWORD: ADMIN_PASSWORD,
        DATABASE_URL: db.url,
        REDIS_URL: redis.url,
        BOT_ENABLED: "false",
        LOG_LEVEL: "info",
        // Every test client comes from 127.0.0.1; a test sets it to check the limit itself.
        CONNECT_RATE_PER_IP: "0",
        ...env,
        ...extra,
      },
      stdin: "ignore",
      stdout: "pipe",
      stderr: "pipe",
    });
    const logs: string[] = [];
    auditLogs(logs);
    readLines(proc.stdout, logs).catch(() => {});
    readLines(proc.stderr, logs).catch(() => {});
    const partial = {
      port,
      api: `http://127.0.0.1:${port}/api/v1`,
      ws: `ws://127.0.0.1:${port}/api/v1/ws`,
      proc,
      logs,
      async kill(signal: NodeJS.Signals = "SIGTERM") {
        if (proc.exitCode === null && proc.signalCode === null) proc.kill(signal);
        await proc.exited;
      },
    };
    const node: TestNode = { ...partial, id: await waitHealthy(partial) };
    nodes.push(node);
    return node;
  };
  // One node first: it migrates the database and creates the superuser; the rest in parallel.
  await start();
  await Promise.all(Array.from({ length: count - 1 }, () => start()));
  return {
    redis,
    db,
    nodes,
    start,
    async stop() {
      await Promise.all(nodes.map((n) => n.kill("SIGKILL")));
      await redis.stop();
      await db.drop();
      for (const d of dirs) rmSync(d, { recursive: true, force: true });
    },
  };
}
