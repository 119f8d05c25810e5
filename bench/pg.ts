// A PostgreSQL of the bench's own (bench/faults.ts): a throwaway cluster made with initdb in a
// temp folder, listening on 127.0.0.1 on a free port, trust authentication, nothing shared with
// the machine's PostgreSQL (which other programs use), so it can be stopped and started again
// under load. As root the cluster belongs to the `postgres` user (initdb refuses root): every
// pg_ctl runs through `su postgres`. Removed by stop().
import { chmodSync, chownSync, existsSync, mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { freePort } from "./redis.ts";

export interface BenchPostgres {
  port: number;
  /** postgres://postgres@127.0.0.1:PORT/postgres */
  url: string;
  /** pg_ctl stop -m immediate (like a crash: no checkpoint), waits until it is down. */
  kill(): Promise<void>;
  /** pg_ctl start on the same port and folder; resolves once it accepts connections. */
  start(): Promise<void>;
  stop(): Promise<void>;
}

/** The newest installed PostgreSQL's bin folder (Debian layout), or null. */
export function pgBin(): string | null {
  const root = "/usr/lib/postgresql";
  if (!existsSync(root)) return null;
  const versions = readdirSync(root)
    .filter((v) => existsSync(join(root, v, "bin", "initdb")))
    .sort((a, b) => Number(b) - Number(a));
  return versions[0] ? join(root, versions[0], "bin") : null;
}

const isRoot = () => process.getuid?.() === 0;

/** Runs a PostgreSQL program (as `postgres` when this process is root); throws with its output. */
function run(bin: string, args: string[], timeoutMs = 60_000): void {
  const quoted = [bin, ...args].map((a) => `'${a.replaceAll("'", "'\\''")}'`).join(" ");
  const cmd = isRoot() ? ["su", "postgres", "-s", "/bin/sh", "-c", quoted] : [bin, ...args];
  const r = Bun.spawnSync(cmd, { stdout: "pipe", stderr: "pipe", timeout: timeoutMs });
  if (r.exitCode !== 0)
    throw new Error(
      `${bin.split("/").pop()} ${args[0] ?? ""} failed (${r.exitCode}): ${r.stderr.toString().slice(0, 300)}`,
    );
}

/** initdb + pg_ctl start on a free port; throws when PostgreSQL is not installed. */
export async function startPostgres(): Promise<BenchPostgres> {
  const bin = pgBin();
  if (bin === null) throw new Error("PostgreSQL (initdb) not found under /usr/lib/postgresql");
  const dir = mkdtempSync(join(tmpdir(), "kabar-bench-pg-"));
  chmodSync(dir, 0o755);
  const data = join(dir, "data");
  if (isRoot()) {
    const pw = Bun.spawnSync(["id", "-u", "postgres"]).stdout.toString().trim();
    const gr = Bun.spawnSync(["id", "-g", "postgres"]).stdout.toString().trim();
    chownSync(dir, Number(pw), Number(gr));
  }
  run(join(bin, "initdb"), [
    "-D",
    data,
    "-A",
    "trust",
    "-U",
    "postgres",
    "--no-sync",
    "-E",
    "UTF8",
  ]);
  const port = freePort();
  const opts = `-p ${port} -k ${dir} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=100`;
  const logFile = join(dir, "pg.log");
  const start = async () => {
    run(join(bin, "pg_ctl"), ["-D", data, "-o", opts, "-l", logFile, "-w", "-t", "30", "start"]);
  };
  await start();
  return {
    port,
    url: `postgres://postgres@127.0.0.1:${port}/postgres`,
    kill: async () => run(join(bin, "pg_ctl"), ["-D", data, "-m", "immediate", "-w", "stop"]),
    start,
    stop: async () => {
      try {
        run(join(bin, "pg_ctl"), ["-D", data, "-m", "fast", "-w", "stop"]);
      } catch {}
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
