// Starting and stopping the servers under test (Kabar and the bare-Bun baseline), each in its own
// process pinned to the server core, and making users and tokens through Kabar's REST API.
import { closeSync, openSync, readFileSync } from "node:fs";
import { join } from "node:path";
import type { Subprocess } from "bun";

const ROOT = join(import.meta.dir, "..");
/** BENCH_KABAR_DIR=<checkout>: the Kabar to measure (another commit's tree, for an A/B run). */
const KABAR_ROOT = process.env.BENCH_KABAR_DIR ?? ROOT;
const hasTaskset = Bun.which("taskset") !== null;

/** `cmd` run on one CPU core (`taskset -c`); as is for core < 0 or where taskset is missing. */
export function pinned(core: number, cmd: string[]): string[] {
  return hasTaskset && core >= 0 ? ["taskset", "-c", String(core), ...cmd] : cmd;
}
export const pinning = hasTaskset;

export interface ServerProc {
  name: "kabar" | "baseline";
  pid: number;
  port: number;
  /** Runs a full garbage collection in the server (bench/gc-hook.ts); false if unanswered. */
  gc(): Promise<boolean>;
  /** Lines the server has written to its log so far (Kabar's JSON lines); null for the baseline. */
  logLines(): number | null;
  stop(): Promise<void>;
}

export interface ServerOpts {
  /** CPU core to pin the server to (< 0: not pinned). */
  core: number;
  /** Where bench/gc-hook.ts acknowledges a collection. */
  gcDir: string;
}

const GC_HOOK = join(import.meta.dir, "gc-hook.ts");

function gcCount(file: string): number {
  try {
    return Number(readFileSync(file, "utf8")) || 0;
  } catch {
    return 0;
  }
}

/** SIGUSR2, then waits (at most 5 s) for the hook to count one more collection. */
function collector(proc: Subprocess, gcDir: string): () => Promise<boolean> {
  const file = join(gcDir, `gc-${proc.pid}`);
  return async () => {
    const before = gcCount(file);
    proc.kill("SIGUSR2");
    const deadline = Date.now() + 5000;
    while (Date.now() < deadline && proc.exitCode === null) {
      await Bun.sleep(20);
      if (gcCount(file) > before) return true;
    }
    return false;
  };
}

/** A free TCP port (bound and released; a clash at start is retried by the caller). */
function freePort(): number {
  const probe = Bun.listen({ hostname: "0.0.0.0", port: 0, socket: { data() {} } });
  const port = probe.port;
  probe.stop(true);
  return port;
}

/** Newlines in `file` (0 when it is missing). */
function countLines(file: string): number {
  try {
    const bytes = readFileSync(file);
    let n = 0;
    for (let i = bytes.indexOf(10); i >= 0; i = bytes.indexOf(10, i + 1)) n++;
    return n;
  } catch {
    return 0;
  }
}

function stopper(proc: Subprocess, after?: () => void): () => Promise<void> {
  return async () => {
    proc.kill("SIGTERM");
    const done = await Promise.race([proc.exited, Bun.sleep(8000).then(() => null)]);
    if (done === null) {
      proc.kill("SIGKILL");
      await proc.exited;
    }
    after?.();
  };
}

const baseEnv = () => ({
  PATH: process.env.PATH ?? "/usr/bin:/bin",
  HOME: process.env.HOME ?? "/tmp",
});

async function healthy(port: number, proc: Subprocess, ms: number): Promise<boolean> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline && proc.exitCode === null) {
    try {
      const res = await fetch(`http://127.0.0.1:${port}/api/v1/ws/health`);
      if (res.ok) return true;
    } catch {}
    await Bun.sleep(50);
  }
  return false;
}

/** BENCH_CPU_PROF=<dir>: Kabar writes a CPU profile (.cpuprofile and Markdown) there on exit. */
function profiling(): string[] {
  const dir = process.env.BENCH_CPU_PROF;
  return dir ? ["--cpu-prof", "--cpu-prof-md", `--cpu-prof-dir=${dir}`] : [];
}

/**
 * Starts `bun src/main.ts` with `env` on a free port; its output goes to `logFile` (appended).
 * `root`: the Kabar tree to run (default BENCH_KABAR_DIR or this checkout).
 */
export async function startKabar(
  env: Record<string, string>,
  opts: ServerOpts & { logFile: string; root?: string },
): Promise<ServerProc> {
  const root = opts.root ?? KABAR_ROOT;
  for (let attempt = 1; attempt <= 3; attempt++) {
    const port = freePort();
    const fd = openSync(opts.logFile, "a");
    const proc = Bun.spawn(
      pinned(opts.core, [
        process.execPath,
        ...profiling(),
        "--preload",
        GC_HOOK,
        join(root, "src/main.ts"),
      ]),
      {
        cwd: root,
        env: {
          ...baseEnv(),
          // Load clients share a few loopback addresses: no per-address connect limit.
          CONNECT_RATE_PER_IP: "0",
          ...env,
          HOST: "0.0.0.0",
          PORT: String(port),
          BENCH_GC_DIR: opts.gcDir,
        },
        stdin: "ignore",
        stdout: fd,
        stderr: fd,
      },
    );
    if (await healthy(port, proc, 15_000))
      return {
        name: "kabar",
        pid: proc.pid,
        port,
        gc: collector(proc, opts.gcDir),
        logLines: () => countLines(opts.logFile),
        stop: stopper(proc, () => closeSync(fd)),
      };
    proc.kill("SIGKILL");
    await proc.exited;
    closeSync(fd);
  }
  throw new Error(`Kabar did not start; see ${opts.logFile}`);
}

/** Starts bench/baseline.ts; it listens on a free port and prints `{"port":N}`. */
export async function startBaseline(
  env: Record<string, string>,
  opts: ServerOpts,
): Promise<ServerProc> {
  const cmd = [process.execPath, "--preload", GC_HOOK, join(ROOT, "bench/baseline.ts")];
  const proc = Bun.spawn(pinned(opts.core, cmd), {
    cwd: ROOT,
    env: { ...baseEnv(), ...env, PORT: "0", BENCH_GC_DIR: opts.gcDir },
    stdin: "ignore",
    stdout: "pipe",
    stderr: "inherit",
  });
  const reader = proc.stdout.getReader();
  let text = "";
  const deadline = Date.now() + 10_000;
  // One read in flight at a time: a read left behind by a timed-out race would swallow the chunk
  // it later gets (a slow start printed its port into a read nobody awaited).
  let pending: ReturnType<typeof reader.read> | null = null;
  while (!text.includes("\n") && Date.now() < deadline) {
    pending ??= reader.read();
    const chunk = await Promise.race([pending, Bun.sleep(200).then(() => null)]);
    if (chunk === null) continue;
    pending = null;
    if (chunk.done) break;
    text += new TextDecoder().decode(chunk.value);
  }
  try {
    reader.releaseLock();
  } catch {
    // A read still pending (timed out): the process is killed below anyway.
  }
  const port = (JSON.parse(text.split("\n")[0] || "{}") as { port?: number }).port;
  if (!port || !(await healthy(port, proc, 5000))) {
    proc.kill("SIGKILL");
    throw new Error(`baseline did not start (printed ${JSON.stringify(text)})`);
  }
  return {
    name: "baseline",
    pid: proc.pid,
    port,
    gc: collector(proc, opts.gcDir),
    logLines: () => null,
    stop: stopper(proc),
  };
}

export async function login(api: string, email: string, password: string): Promise<string> {
  const res = await fetch(`${api}/login/access-token`, {
    method: "POST",
    body: new URLSearchParams({ username: email, password }),
  });
  if (res.status !== 200) throw new Error(`login ${email}: ${res.status} ${await res.text()}`);
  return ((await res.json()) as { access_token: string }).access_token;
}

/**
 * Creates users through `POST /users/` as the superuser (argon2 ~0.1 s each: few users, many
 * sockets each) and logs each in. Returns one access token per email, in order.
 */
export async function makeUsers(
  port: number,
  admin: { email: string; password: string },
  emails: string[],
  password: string,
): Promise<string[]> {
  const api = `http://127.0.0.1:${port}/api/v1`;
  const adminToken = await login(api, admin.email, admin.password);
  await Promise.all(
    emails.map(async (email) => {
      const res = await fetch(`${api}/users/`, {
        method: "POST",
        headers: { authorization: `Bearer ${adminToken}`, "content-type": "application/json" },
        body: JSON.stringify({ email, password, full_name: "bench" }),
      });
      if (res.status !== 200 && !(await res.text()).includes("exist"))
        throw new Error(`create ${email}: ${res.status}`);
    }),
  );
  return Promise.all(emails.map((email) => login(api, email, password)));
}
