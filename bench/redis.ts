// A redis-server of the bench's own (bench/cluster.ts, bench/c100k.ts): a free port, nothing
// persisted (`--save "" --appendonly no`), optionally pinned to a core, so its CPU time and
// memory can be read from /proc/<pid> like the nodes'. Stopped with SIGTERM, SIGKILL after 3 s.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Subprocess } from "bun";
import { pinned } from "./servers.ts";

export const REDIS_BIN = Bun.which("redis-server") ?? "/usr/bin/redis-server";

/** True when redis-server can be started here. */
export const redisInstalled = (): boolean =>
  Bun.which("redis-server") !== null || Bun.file(REDIS_BIN).size > 0;

export interface BenchRedis {
  pid: number;
  port: number;
  url: string;
  stop(): Promise<void>;
}

/** A TCP port nobody listens on (bound and released; a clash at start is retried). */
export function freePort(): number {
  const probe = Bun.listen({ hostname: "0.0.0.0", port: 0, socket: { data() {} } });
  const port = probe.port;
  probe.stop(true);
  return port;
}

async function ready(port: number, proc: Subprocess, ms: number): Promise<boolean> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline && proc.exitCode === null) {
    try {
      const answer = await new Promise<string>((resolve, reject) => {
        let got = "";
        Bun.connect({
          hostname: "127.0.0.1",
          port,
          socket: {
            open: (s) => {
              s.write("PING\r\n");
            },
            data: (s, chunk) => {
              got += chunk.toString();
              if (got.includes("\r\n")) {
                s.end();
                resolve(got);
              }
            },
            close: () => resolve(got),
            error: (_s, e) => reject(e),
          },
        }).catch(reject);
        setTimeout(() => resolve(got), 500);
      });
      if (answer.startsWith("+PONG")) return true;
    } catch {}
    await Bun.sleep(20);
  }
  return false;
}

/**
 * Starts `redis-server --port P --save "" --appendonly no` on a free port (pinned when core >= 0),
 * or on `port` when given (a restart after a kill: bench/faults.ts; one attempt then).
 */
export async function startRedis(core: number, fixedPort?: number): Promise<BenchRedis> {
  for (let attempt = 1; attempt <= (fixedPort === undefined ? 3 : 1); attempt++) {
    const port = fixedPort ?? freePort();
    const dir = mkdtempSync(join(tmpdir(), "kabar-bench-redis-"));
    const cmd = [
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
    ];
    const proc = Bun.spawn(pinned(core, cmd), {
      stdin: "ignore",
      stdout: "ignore",
      stderr: "ignore",
    });
    const stop = async () => {
      if (proc.exitCode === null && proc.signalCode === null) {
        proc.kill("SIGTERM");
        const done = await Promise.race([proc.exited, Bun.sleep(3000).then(() => null)]);
        if (done === null) {
          proc.kill("SIGKILL");
          await proc.exited;
        }
      }
      rmSync(dir, { recursive: true, force: true });
    };
    if (await ready(port, proc, 5000))
      return { pid: proc.pid, port, url: `redis://127.0.0.1:${port}`, stop };
    await stop();
  }
  throw new Error(`redis-server (${REDIS_BIN}) did not start`);
}
