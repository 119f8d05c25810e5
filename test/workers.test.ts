// WORKERS=N with real processes: a supervisor (`bun src/main.ts`, and once the compiled binary)
// starting N nodes that share one port through SO_REUSEPORT, a redis-server of the test's own
// and a fresh PostgreSQL database (or, where PostgreSQL is not reachable, one SQLite file that the
// workers share). Health answers are read over fresh TCP connections, so that the kernel spreads
// them over the workers; a WebSocket's worker is found by which node's connection count rose.
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { copyFileSync, existsSync, mkdtempSync, readdirSync, rmSync, statSync } from "node:fs";
import { availableParallelism, tmpdir } from "node:os";
import { join, resolve } from "node:path";
import type { Subprocess } from "bun";
import { ConfigError, loadConfig } from "../src/config.ts";
import {
  ADMIN_EMAIL,
  ADMIN_PASSWORD,
  Client,
  createUser,
  freePort,
  SECRET,
  type TestUser,
} from "./helpers.ts";
import { freshDatabase, pgAvailable, type TestDatabase } from "./postgres.ts";
import { type RedisServer, redisAvailable, startRedis } from "./redis-server.ts";

setDefaultTimeout(60_000);

const ROOT = resolve(import.meta.dir, "..");
/** The supervisor gives workers 8 s before SIGKILL; each worker closes sockets within 3 s. */
const EXIT_MS = 12_000;
const run = redisAvailable();

type Ev = Record<string, unknown>;

const dirs: string[] = [];
const procs: Subprocess[] = [];
const tempDir = (prefix = "kabar-workers-") => {
  const d = mkdtempSync(join(tmpdir(), prefix));
  dirs.push(d);
  return d;
};

let redis: RedisServer | undefined;
let db: TestDatabase | undefined;
/** DATABASE_URL for the workers: PostgreSQL when it answers, else the default SQLite file. */
let databaseEnv: Record<string, string> = {};

beforeAll(async () => {
  if (!run) return;
  redis = await startRedis();
  if (await pgAvailable()) {
    db = await freshDatabase();
    databaseEnv = { DATABASE_URL: db.url };
  } else console.warn("workers: PostgreSQL not reachable; the workers share an SQLite file");
});

afterAll(async () => {
  for (const p of procs) if (p.exitCode === null && p.signalCode === null) p.kill("SIGKILL");
  await Promise.all(procs.map((p) => p.exited));
  await redis?.stop();
  await db?.drop();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

async function readLines(stream: ReadableStream<Uint8Array>, into: string[]): Promise<void> {
  const decoder = new TextDecoder();
  let rest = "";
  for await (const chunk of stream) {
    rest += decoder.decode(chunk, { stream: true });
    const lines = rest.split("\n");
    rest = lines.pop() ?? "";
    into.push(...lines);
  }
  if (rest !== "") into.push(rest);
}

interface Supervisor {
  proc: Subprocess<"ignore", "pipe", "pipe">;
  port: number;
  api: string;
  ws: string;
  out: string[];
  err: string[];
  /** stdout and stderr, both read to the end (after the process exited). */
  drained: Promise<void>;
  /** The JSON log lines so far. */
  entries(): Ev[];
  /** Every worker pid the supervisor reported ("worker started"). */
  pids(): number[];
  /** worker index → pid of its latest process. */
  pidOf(worker: number): number;
  /** node id → worker index, from the workers' "listening" lines. */
  workerOf(node: string): number;
}

function spawnSupervisor(
  env: Record<string, string>,
  options: { args?: string[]; exe?: string; port: number },
): Supervisor {
  const command = options.exe
    ? [options.exe, ...(options.args ?? [])]
    : [process.execPath, "src/main.ts", ...(options.args ?? [])];
  const proc = Bun.spawn(command, {
    cwd: options.exe ? tempDir() : ROOT,
    env: {
      PATH: process.env.PATH ?? "/usr/bin:/bin",
      HOST: "127.0.0.1",
      PORT: String(options.port),
      DATA_DIR: tempDir(),
      SECRET_KEY: SECRET,
      FIRST_SUPERUSER: ADMIN_EMAIL,
      FIRST_SUPERUSER_PASSWORD: ADMIN_PASSWORD,
      BOT_ENABLED: "false",
      LOG_LEVEL: "info",
      ...env,
    },
    stdin: "ignore",
    stdout: "pipe",
    stderr: "pipe",
  });
  procs.push(proc);
  const out: string[] = [];
  const err: string[] = [];
  const drained = Promise.all([readLines(proc.stdout, out), readLines(proc.stderr, err)]).then(
    () => {},
  );
  const entries = () =>
    out.flatMap((line) => {
      try {
        return [JSON.parse(line) as Ev];
      } catch {
        return [];
      }
    });
  const started = () => entries().filter((e) => e.msg === "worker started");
  return {
    proc,
    port: options.port,
    api: `http://127.0.0.1:${options.port}/api/v1`,
    ws: `ws://127.0.0.1:${options.port}/api/v1/ws`,
    out,
    err,
    drained,
    entries,
    pids: () => started().map((e) => e.pid as number),
    pidOf(worker) {
      const last = started()
        .filter((e) => e.worker === worker)
        .at(-1);
      if (!last) throw new Error(`no worker ${worker} started`);
      return last.pid as number;
    },
    workerOf(node) {
      const line = entries().find((e) => e.msg === "listening" && e.node === node);
      if (!line) throw new Error(`no worker logged listening as node ${node}`);
      return line.worker as number;
    },
  };
}

/** Waits until `n` workers logged "listening"; throws if the supervisor exits first. */
async function waitListening(sup: Supervisor, n: number, ms = 30_000): Promise<void> {
  const deadline = Date.now() + ms;
  for (;;) {
    const workers = new Set(
      sup
        .entries()
        .filter((e) => e.msg === "listening" && typeof e.worker === "number")
        .map((e) => e.worker),
    );
    if (workers.size >= n) return;
    if (sup.proc.exitCode !== null)
      throw new Error(
        `supervisor exited ${sup.proc.exitCode}: ${[...sup.out, ...sup.err].join("\n")}`,
      );
    if (Date.now() > deadline) throw new Error(`not ${n} workers listening in time`);
    await Bun.sleep(50);
  }
}

interface Health {
  status: string;
  node: string;
  redis: string;
  active_connections: number;
}

/** GET /ws/health over a new TCP connection (`Connection: close`): any worker may answer. */
async function healthOnce(port: number, ms = 3000): Promise<Health> {
  const chunks: Buffer[] = [];
  await new Promise<void>((ok, fail) => {
    const timer = setTimeout(() => fail(new Error("health: no answer in time")), ms);
    const done = (e?: Error) => {
      clearTimeout(timer);
      if (e) fail(e);
      else ok();
    };
    Bun.connect({
      hostname: "127.0.0.1",
      port,
      socket: {
        open(s) {
          s.write(
            `GET /api/v1/ws/health HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nConnection: close\r\n\r\n`,
          );
        },
        data(_s, d) {
          chunks.push(Buffer.from(d));
        },
        close() {
          done();
        },
        error(_s, e) {
          done(e);
        },
        connectError(_s, e) {
          done(e);
        },
      },
    }).catch((e: Error) => done(e));
  });
  const text = Buffer.concat(chunks).toString();
  const json = /\{.*\}/s.exec(text.slice(text.indexOf("\r\n\r\n")));
  if (!text.startsWith("HTTP/1.1 200") || !json) throw new Error(`health: ${text}`);
  return JSON.parse(json[0]) as Health;
}

/** Node ids seen over `tries` new connections. */
async function nodeIds(port: number, tries = 20): Promise<Set<string>> {
  const ids = new Set<string>();
  for (let i = 0; i < tries; i++) ids.add((await healthOnce(port)).node);
  return ids;
}

/** Each node's health, by asking over new connections until every node in `nodes` answered. */
async function healthByNode(port: number, nodes: Set<string>): Promise<Map<string, Health>> {
  const seen = new Map<string, Health>();
  for (let i = 0; i < 200 && seen.size < nodes.size; i++) {
    const h = await healthOnce(port);
    if (nodes.has(h.node)) seen.set(h.node, h);
  }
  if (seen.size < nodes.size) throw new Error("some worker never answered health");
  return seen;
}

/** Polls new connections until `want` node ids answer (ids outside `old`, with `old`). */
async function waitNodes(
  port: number,
  want: (ids: Set<string>) => boolean,
  ms = 15_000,
): Promise<Set<string>> {
  const deadline = Date.now() + ms;
  const ids = new Set<string>();
  while (Date.now() < deadline) {
    try {
      ids.add((await healthOnce(port)).node);
      if (want(ids)) return ids;
    } catch {
      // a worker between death and restart
    }
    await Bun.sleep(20);
  }
  throw new Error(`nodes seen: ${[...ids].join(", ")}`);
}

interface Placed {
  client: Client;
  node: string;
}

/**
 * Opens sockets of `user` one at a time until there is one on each node of `want`; returns one
 * per node (the extra sockets are closed). A socket's node is the one whose count went up.
 */
async function placeOn(sup: Supervisor, user: TestUser, want: Set<string>): Promise<Placed[]> {
  const placed = new Map<string, Client>();
  const extra: Client[] = [];
  for (let i = 0; i < 40 && placed.size < want.size; i++) {
    const before = await healthByNode(sup.port, want);
    const client = await Client.connect(sup, user.token);
    const after = await healthByNode(sup.port, want);
    const node = [...want].find(
      (n) => (after.get(n)?.active_connections ?? 0) > (before.get(n)?.active_connections ?? 0),
    );
    if (node === undefined) throw new Error("the new socket was counted on no node");
    if (placed.has(node)) extra.push(client);
    else placed.set(node, client);
  }
  for (const c of extra) c.close();
  if (placed.size < want.size) throw new Error("sockets never landed on every worker");
  return [...placed].map(([node, client]) => ({ node, client }));
}

async function nextEvent(c: Client, ms = 3000): Promise<Ev> {
  return JSON.parse(await c.next(ms)) as Ev;
}

async function joined(c: Client, name: string): Promise<Ev> {
  c.send({ type: "join_room", room_name: name });
  const ev = await nextEvent(c);
  expect(ev.type).toBe("room_joined");
  expect(await nextEvent(c)).toMatchObject({ type: "room_update", room: name });
  return ev;
}

const alive = (pid: number): boolean => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

async function exitWithin(proc: Subprocess, ms: number): Promise<number | null> {
  return Promise.race([proc.exited, Bun.sleep(ms).then(() => null)]);
}

let roomSeq = 0;
const room = () => `w-${++roomSeq}-${Date.now().toString(36)}`;

describe("WORKERS setting", () => {
  test("N or auto (one per core); unset is one process; anything else names WORKERS", () => {
    const redisUrl = "redis://127.0.0.1:6379";
    expect(loadConfig({}).workers).toBeUndefined();
    expect(loadConfig({ WORKERS: "", REDIS_URL: redisUrl }).workers).toBeUndefined();
    expect(loadConfig({ WORKERS: "3", REDIS_URL: redisUrl }).workers).toBe(3);
    expect(loadConfig({ WORKERS: "auto", REDIS_URL: redisUrl }).workers).toBe(
      availableParallelism(),
    );
    expect(loadConfig({ WORKERS: " AUTO ", REDIS_URL: redisUrl }).workers).toBe(
      availableParallelism(),
    );
    for (const bad of ["0", "-1", "two", "1.5", "2000"]) {
      const attempt = () => loadConfig({ WORKERS: bad, REDIS_URL: redisUrl });
      expect(attempt).toThrow(ConfigError);
      expect(attempt).toThrow(/^WORKERS: /);
    }
    expect(() => loadConfig({ WORKERS: "2" })).toThrow(/^WORKERS: .*REDIS_URL/);
  });

  for (const [how, env, args] of [
    ["WORKERS=2", { WORKERS: "2" }, []],
    ["--workers 2", {}, ["--workers", "2"]],
  ] as const) {
    test(`${how} without REDIS_URL: exit 1, one line naming WORKERS and REDIS_URL`, async () => {
      const sup = spawnSupervisor(env, { args: [...args], port: await freePort() });
      expect(await exitWithin(sup.proc, 10_000)).toBe(1);
      await sup.drained;
      const lines = sup.err.filter((l) => l.trim() !== "");
      expect(lines).toHaveLength(1);
      expect(lines[0]).toContain("WORKERS");
      expect(lines[0]).toContain("REDIS_URL");
      expect(sup.out).toEqual([]);
    });
  }

  test("--workers without a value, or another argument next to it, is refused (exit 2)", async () => {
    for (const args of [["--workers"], ["--workers", "2", "--port", "1"]]) {
      const sup = spawnSupervisor({}, { args, port: await freePort() });
      expect(await exitWithin(sup.proc, 10_000)).toBe(2);
      await sup.drained;
      expect(sup.err.join("\n")).toContain("--help");
    }
  });

  test("a taken port: the supervisor exits 1 (address already in use) and starts no worker", async () => {
    const port = await freePort();
    const taken = Bun.serve({ hostname: "127.0.0.1", port, fetch: () => new Response("other") });
    try {
      const sup = spawnSupervisor({ WORKERS: "2", REDIS_URL: "redis://127.0.0.1:1" }, { port });
      expect(await exitWithin(sup.proc, 10_000)).toBe(1);
      await sup.drained;
      const lines = sup.err.filter((l) => l.trim() !== "");
      expect(lines).toHaveLength(1);
      expect(lines[0]).toContain("address already in use");
      expect(sup.pids()).toEqual([]);
    } finally {
      await taken.stop(true);
    }
  });

  test("a worker that keeps failing before it listens: the supervisor gives up with exit 1", async () => {
    // Nothing listens on the database port: every worker exits 1 at start.
    const deadDb = `postgres://postgres@127.0.0.1:${await freePort()}/kabar`;
    const sup = spawnSupervisor(
      { WORKERS: "2", REDIS_URL: "redis://127.0.0.1:1", DATABASE_URL: deadDb },
      { port: await freePort() },
    );
    expect(await exitWithin(sup.proc, 30_000)).toBe(1);
    await sup.drained;
    const last = sup.err.filter((l) => l.trim() !== "").at(-1) ?? "";
    expect(last).toMatch(/^kabar: worker 0 exited with code 1 before listening \d+ times/);
    expect(last).toContain("giving up");
    // The worker's own reason, once (not once per attempt).
    expect(sup.err.filter((l) => l.includes("PostgreSQL"))).toHaveLength(1);
    const restarts = sup.entries().filter((e) => e.msg === "worker exited: restarting");
    expect(restarts.length).toBeGreaterThanOrEqual(2);
    // Backoff: each delay doubles.
    const delays = restarts.map((e) => e.restart_in_ms);
    expect(delays.slice(0, 3)).toEqual([100, 200, 400]);
    // Worker 0 starts alone: the others never started while it could not listen.
    expect(sup.entries().filter((e) => e.msg === "worker started" && e.worker !== 0)).toEqual([]);
    for (const pid of sup.pids()) expect(alive(pid)).toBe(false);
  });
});

describe.skipIf(!run)("WORKERS=2 with Redis", () => {
  let sup: Supervisor;
  let alice: TestUser;
  let bob: TestUser;
  let nodes: Set<string>;

  beforeAll(async () => {
    sup = spawnSupervisor(
      { WORKERS: "2", REDIS_URL: (redis as RedisServer).url, ...databaseEnv },
      { port: await freePort() },
    );
    await waitListening(sup, 2);
    alice = await createUser(sup);
    bob = await createUser(sup);
  });

  test("both workers serve on the one port: health answers from two node ids", async () => {
    const started = sup.entries().find((e) => e.msg === "starting workers");
    expect(started).toMatchObject({ workers: 2, port: sup.port, pid: sup.proc.pid });
    nodes = await nodeIds(sup.port, 20);
    expect(nodes.size).toBe(2);
    const listening = sup.entries().filter((e) => e.msg === "listening");
    expect(new Set(listening.map((e) => e.node))).toEqual(nodes);
    expect(new Set(listening.map((e) => e.worker))).toEqual(new Set([0, 1]));
    for (const pid of sup.pids()) expect(alive(pid)).toBe(true);
    expect(sup.pids()).not.toContain(sup.proc.pid);
    // Every line the supervisor writes is a JSON log line; the workers' carry `worker`.
    for (const line of sup.out) JSON.parse(line);
    expect(sup.err).toEqual([]);
  });

  test("two clients on different workers chat in a room: each message arrives exactly once", async () => {
    const ofAlice = await placeOn(sup, alice, nodes);
    const ofBob = await placeOn(sup, bob, nodes);
    const pa = ofAlice[0] as Placed;
    // Bob's socket on the other worker than Alice's.
    const pb = ofBob.find((p) => p.node !== pa.node) as Placed;
    const [a, b] = [pa.client, pb.client];
    const name = room();
    a.send({ type: "create_room", room_name: name });
    expect(await nextEvent(a)).toMatchObject({ type: "room_created", room: name });
    expect(await joined(a, name)).toMatchObject({ members: 1 });
    expect(await joined(b, name)).toMatchObject({ members: 2 });
    a.send({ type: "message", content: "hello across workers" });
    const echo = await nextEvent(a);
    expect(echo).toMatchObject({
      type: "message",
      room: name,
      from: alice.id,
      content: "hello across workers",
    });
    expect(await nextEvent(b)).toEqual(echo);
    b.send({ type: "message", content: "hello back" });
    const back = await nextEvent(a);
    expect(back).toMatchObject({ type: "message", from: bob.id, content: "hello back" });
    expect(await nextEvent(b)).toEqual(back);
    for (const c of [a, b]) expect(await c.stray()).toEqual([]);
    for (const p of [...ofAlice, ...ofBob]) p.client.close();
  });

  test("SIGKILL one worker: the supervisor restarts it (a new node id), the other worker's sockets carry on", async () => {
    const [pa, pb] = (await placeOn(sup, alice, nodes)) as [Placed, Placed];
    const name = room();
    pa.client.send({ type: "create_room", room_name: name });
    await nextEvent(pa.client);
    await joined(pa.client, name);
    await joined(pb.client, name);

    const victim = sup.workerOf(pb.node);
    const pid = sup.pidOf(victim);
    process.kill(pid, "SIGKILL");
    expect((await pb.client.waitClose(5000)).code).toBe(1006);

    const now = await waitNodes(sup.port, (ids) => ids.size === 2 && !ids.has(pb.node));
    expect(now.has(pa.node)).toBe(true);
    const fresh = [...now].find((n) => n !== pa.node) as string;
    expect(sup.workerOf(fresh)).toBe(victim);
    expect(sup.pidOf(victim)).not.toBe(pid);
    expect(alive(pid)).toBe(false);
    const restart = sup.entries().find((e) => e.msg === "worker exited: restarting");
    expect(restart).toMatchObject({ worker: victim, pid, signal: "SIGKILL", restart_in_ms: 100 });

    // The surviving worker's socket never noticed, and reaches a socket on the new worker.
    pa.client.send({ type: "message", content: "still here" });
    expect(await nextEvent(pa.client)).toMatchObject({ type: "message", content: "still here" });
    nodes = now;
    const [qa, qb] = (await placeOn(sup, bob, nodes)) as [Placed, Placed];
    const onFresh = qa.node === fresh ? qa : qb;
    await joined(onFresh.client, name);
    pa.client.send({ type: "message", content: "welcome back" });
    expect(await nextEvent(pa.client)).toMatchObject({ content: "welcome back" });
    expect(await nextEvent(onFresh.client)).toMatchObject({
      content: "welcome back",
      from: alice.id,
    });
    for (const c of [pa.client, onFresh.client]) expect(await c.stray()).toEqual([]);
    for (const c of [pa.client, qa.client, qb.client]) c.close();
  });

  test("SIGTERM to the supervisor: clients get 1001, it exits 0, no worker is left", async () => {
    const placed = await placeOn(sup, alice, nodes);
    expect(placed).toHaveLength(2);
    const t0 = performance.now();
    sup.proc.kill("SIGTERM");
    const closes = await Promise.all(placed.map((p) => p.client.waitClose(EXIT_MS)));
    expect(closes).toEqual([
      { code: 1001, reason: "Server shutting down" },
      { code: 1001, reason: "Server shutting down" },
    ]);
    expect(await exitWithin(sup.proc, EXIT_MS)).toBe(0);
    expect(performance.now() - t0).toBeLessThan(EXIT_MS);
    await sup.drained;
    for (const pid of sup.pids()) expect(alive(pid)).toBe(false);
    const entries = sup.entries();
    expect(entries.filter((e) => e.msg === "stopped" && e.worker !== undefined)).toHaveLength(2);
    expect(entries.at(-1)).toMatchObject({ msg: "stopped" });
    expect(entries.at(-1)?.worker).toBeUndefined();
    expect(sup.err).toEqual([]);
  });
});

describe.skipIf(!run)("starting workers other ways", () => {
  async function startsAndStops(sup: Supervisor, n: number): Promise<void> {
    await waitListening(sup, n);
    expect((await nodeIds(sup.port, 10 * n)).size).toBe(n);
    sup.proc.kill("SIGTERM");
    expect(await exitWithin(sup.proc, EXIT_MS)).toBe(0);
    for (const pid of sup.pids()) expect(alive(pid)).toBe(false);
  }

  test("--workers 2 works like WORKERS=2", async () => {
    const sup = spawnSupervisor(
      { REDIS_URL: (redis as RedisServer).url, ...databaseEnv },
      { args: ["--workers", "2"], port: await freePort() },
    );
    await startsAndStops(sup, 2);
  });

  test("LOG_LEVEL=warn (no listening lines): every worker still starts", async () => {
    const sup = spawnSupervisor(
      { WORKERS: "2", LOG_LEVEL: "warn", REDIS_URL: (redis as RedisServer).url, ...databaseEnv },
      { port: await freePort() },
    );
    expect((await waitNodes(sup.port, (ids) => ids.size >= 2)).size).toBe(2);
    // The workers' ready lines are the supervisor's, not passed on.
    expect(sup.out.some((l) => l.includes("kabar_worker"))).toBe(false);
    sup.proc.kill("SIGTERM");
    expect(await exitWithin(sup.proc, EXIT_MS)).toBe(0);
  });

  test.skipIf(availableParallelism() > 4)("WORKERS=auto starts one worker per core", async () => {
    const sup = spawnSupervisor(
      { WORKERS: "auto", REDIS_URL: (redis as RedisServer).url, ...databaseEnv },
      { port: await freePort() },
    );
    await startsAndStops(sup, availableParallelism());
  });
});

describe.skipIf(!run)("the compiled binary", () => {
  let exe = "";

  /** Newest modification time under `path` (a file or a folder tree). */
  function newest(path: string): number {
    const st = statSync(path);
    if (!st.isDirectory()) return st.mtimeMs;
    return Math.max(0, ...readdirSync(path).map((name) => newest(join(path, name))));
  }

  beforeAll(async () => {
    const dir = tempDir("kabar-workers-bin-");
    exe = join(dir, "kabar");
    // dist/kabar when it is newer than the sources (copied: another test may rebuild it), else
    // a build of our own.
    const dist = join(ROOT, "dist", "kabar");
    if (existsSync(dist) && statSync(dist).mtimeMs >= newest(join(ROOT, "src"))) {
      copyFileSync(dist, exe);
      return;
    }
    const built = Bun.spawnSync(
      [
        process.execPath,
        "build",
        "src/main.ts",
        "--compile",
        "--minify-whitespace",
        "--minify-syntax",
        "--outfile",
        exe,
      ],
      { cwd: ROOT, stdout: "pipe", stderr: "pipe" },
    );
    if (built.exitCode !== 0) throw new Error(`build failed: ${built.stderr.toString()}`);
  }, 180_000);

  test("WORKERS=2 from the binary: two node ids answer on one port; SIGTERM exits 0", async () => {
    const sup = spawnSupervisor(
      {
        WORKERS: "2",
        REDIS_URL: (redis as RedisServer).url,
        ...databaseEnv,
        PATH: "/usr/bin:/bin",
      },
      { exe, port: await freePort() },
    );
    await waitListening(sup, 2);
    expect((await nodeIds(sup.port, 20)).size).toBe(2);
    const user = await createUser(sup);
    const placed = await placeOn(sup, user, await nodeIds(sup.port, 20));
    sup.proc.kill("SIGTERM");
    for (const p of placed) expect((await p.client.waitClose(EXIT_MS)).code).toBe(1001);
    expect(await exitWithin(sup.proc, EXIT_MS)).toBe(0);
    for (const pid of sup.pids()) expect(alive(pid)).toBe(false);
    await sup.drained;
    expect(sup.err).toEqual([]);
  });
});
