// 100,000 concurrent authenticated connections on this machine, then one broadcast to them all:
// `npm run bench:c100k` (or `-- --connections N`). One user per socket: N users written straight
// into the SQLite file the nodes share (bench/users.ts) with tokens signed like Kabar's. The
// server is `WORKERS=W bun src/main.ts` (W nodes sharing one port with SO_REUSEPORT, REDIS_URL
// on a redis-server of the bench's own) — or, with `--mode nodes`, W separate node processes on W
// ports. Load clients: C processes of bench/c100k-client.ts (at most 19,000 sockets each, raw
// WebSockets), socket g going to 127.0.0.(1 + g mod H) so that no destination address runs out
// of ephemeral ports. Nothing is pinned: servers, Redis and clients share the machine's cores.
// Measured: time to open them all (connect, upgrade, token, user, cluster-wide count, welcome),
// RSS growth of the server processes after a forced GC in each (bench/gc-hook.ts), CPU while
// opening, and one broadcast (REST POST /api/v1/ws/broadcast as the superuser): every socket
// timestamps its receipt, the send time is taken just before the POST, on one clock (each
// client's offset to the harness's clock is measured and taken off), lost = sockets that did not
// get it. Writes bench/results/<stamp>-c100k-<N>.json and c100k-latest.* (100,000 connections;
// other counts c100k-latest-<N>.*).
import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  C100K_MAX_SOCKETS,
  type C100kCollectResult,
  type C100kOpenResult,
} from "./c100k-client.ts";
import { c100kMarkdown, c100kSvg, checkC100kTargets } from "./c100k-report.ts";
import { stopOnSignals, tracked } from "./cleanup.ts";
import { type KabarSource, kabarSource, loadAvg } from "./cluster.ts";
import { LineAgent } from "./line-agent.ts";
import { cpuSeconds, type Machine, machine, machineCpu, rssBytes } from "./proc.ts";
import { startRedis } from "./redis.ts";
import type { Failure, QuietWait, TargetCheck } from "./result.ts";
import { sharesOf } from "./scenarios.ts";
import { type ServerProc, startKabar } from "./servers.ts";
import {
  ADMIN,
  failRecorder,
  PASSWORD,
  progressLog,
  runMain,
  SECRET,
  shown,
  tidyTemp,
  tunedEnv,
  waitForQuiet,
  writeResults,
} from "./setup.ts";
import { round } from "./stats.ts";
import { insertUsers, signLike } from "./users.ts";

const CLIENT = join(import.meta.dir, "c100k-client.ts");
/** Sockets per worker the default worker count aims at (each process can hold ~19,990). */
const PER_WORKER = 15_000;
/** Sockets per client process the default client count aims at (at most C100K_MAX_SOCKETS). */
const PER_CLIENT = 17_000;

export interface C100kOptions {
  connections: number;
  /** Nodes: WORKERS=W (mode workers) or W node processes (mode nodes). */
  workers: number;
  clients: number;
  /** Destination addresses 127.0.0.1 … 127.0.0.H. */
  hosts: number;
  mode: "workers" | "nodes";
  /** Sockets each client opens at once. */
  concurrency: number;
  /** Before opening, wait up to this long for other processes to go quiet. */
  quietWaitMs: number;
  outDir: string;
  writeLatest: boolean;
  progress: boolean;
}

export function defaultOptions(connections: number): Omit<C100kOptions, "outDir"> {
  return {
    connections,
    workers: Math.max(2, Math.ceil(connections / PER_WORKER)),
    clients: Math.max(1, Math.ceil(connections / PER_CLIENT)),
    hosts: 16,
    mode: "workers",
    concurrency: 64,
    quietWaitMs: 120_000,
    writeLatest: true,
    progress: true,
  };
}

export interface Percentiles {
  count: number;
  minMs: number;
  p50Ms: number;
  p90Ms: number;
  p99Ms: number;
  maxMs: number;
}

export interface C100kResult {
  version: 1;
  kind: "c100k";
  kabar: KabarSource;
  startedAt: string;
  durationSec: number;
  machine: Machine;
  loadAvg: { start: number[]; beforeOpen: number[]; end: number[] };
  settings: Omit<C100kOptions, "outDir" | "writeLatest" | "progress"> & {
    users: number;
    socketTimeoutMs: number;
    program: string;
    env: Record<string, string>;
    redis: string;
    pinned: false;
  };
  open?: {
    attempted: number;
    opened: number;
    failed: number;
    errors: string[];
    openSec: number;
    connPerSec: number;
    /** Each client's time to open its share (s). */
    perClientSec: number[];
    /** Sockets each node holds (open descriptors after minus before, per node process). */
    perNode: number[];
    /** CPU seconds while opening: the node processes, redis-server, the load clients. */
    cpuSec: {
      nodes: number;
      supervisor: number;
      redis: number;
      clients: number;
      other: number;
      steal: number;
    };
    /** Node + redis-server CPU per connection (µs). */
    serverCpuPerConnUs: number;
  };
  memory?: {
    /** Every node answered its GC signal before both readings. */
    afterGc: boolean;
    nodesBeforeMiB: number;
    nodesAfterMiB: number;
    nodesPerConnKiB: number;
    redisBeforeMiB: number;
    redisAfterMiB: number;
    redisPerConnKiB: number;
    /** Nodes and redis-server together. */
    totalPerConnKiB: number;
    /** The supervisor (WORKERS mode; it holds no socket). */
    supervisorMiB: number | null;
    perNodeAfterMiB: number[];
  };
  broadcast?: {
    /** Sockets open when it was sent, over all clients. */
    sockets: number;
    received: number;
    lost: number;
    duplicates: number;
    /** Sockets closed by the server before it arrived. */
    closed: number;
    /** The REST call: sent → its answer (ms), and the recipients the answering node counted. */
    restMs: number;
    restRecipients: number;
    latency: Percentiles;
    /** Clock offsets of the clients to the harness (ms; taken off) and their uncertainty. */
    clockOffsetsMs: number[];
    clockUncertaintyMs: number;
    /**
     * CPU seconds from just before sending until every client answered (includes the clients'
     * own wait): the nodes, redis-server, the load clients. Receipt times are taken in the
     * clients' JS, so the clients' own work of reading every frame is part of the latency.
     */
    cpuSec: { nodes: number; redis: number; clients: number; other: number };
    /** Share of the sockets that had it by each time (ms after sending): for the chart. */
    cdf: { ms: number; share: number }[];
  };
  failures: Failure[];
  targets: TargetCheck[];
  background: QuietWait[];
}

const epoch = () => performance.timeOrigin + performance.now();

/** Children of `pid` (every thread's list). */
function childrenOf(pid: number): number[] {
  const out = new Set<number>();
  try {
    for (const t of readdirSync(`/proc/${pid}/task`)) {
      const text = readFileSync(`/proc/${pid}/task/${t}/children`, "utf8").trim();
      for (const c of text.split(/\s+/)) if (c) out.add(Number(c));
    }
  } catch {}
  return [...out].sort((a, b) => a - b);
}

const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

const fdCount = (pid: number): number => {
  try {
    return readdirSync(`/proc/${pid}/fd`).length;
  } catch {
    return -1;
  }
};

/** SIGUSR2 (bench/gc-hook.ts), then waits (at most 10 s) for the hook to count one more. */
async function gcPid(pid: number, gcDir: string): Promise<boolean> {
  const file = join(gcDir, `gc-${pid}`);
  const count = () => {
    try {
      return Number(readFileSync(file, "utf8")) || 0;
    } catch {
      return 0;
    }
  };
  const before = count();
  try {
    process.kill(pid, "SIGUSR2");
  } catch {
    return false;
  }
  const deadline = Date.now() + 10_000;
  while (Date.now() < deadline) {
    await Bun.sleep(20);
    if (count() > before) return true;
  }
  return false;
}

/** Sum of the RSS of `pids` after a full GC in each, once it stays within 256 KiB for 300 ms. */
async function settledRss(
  pids: number[],
  gcDir: string,
): Promise<{ bytes: number[]; gc: boolean }> {
  const gcs = await Promise.all(pids.map((pid) => gcPid(pid, gcDir)));
  const start = performance.now();
  const seen: number[][] = [pids.map(rssBytes)];
  const total = (xs: number[]) => xs.reduce((a, x) => a + x, 0);
  while (performance.now() - start < 6000) {
    await Bun.sleep(100);
    seen.push(pids.map(rssBytes));
    const last = seen.slice(-4).map(total);
    if (performance.now() - start >= 800 && last.length === 4)
      if (Math.max(...last) - Math.min(...last) <= 256 * 1024) break;
  }
  return { bytes: seen[seen.length - 1] ?? [], gc: gcs.every(Boolean) };
}

async function login(port: number, email: string, password: string): Promise<string> {
  const res = await fetch(`http://127.0.0.1:${port}/api/v1/login/access-token`, {
    method: "POST",
    body: new URLSearchParams({ username: email, password }),
  });
  if (res.status !== 200) throw new Error(`login ${email}: ${res.status} ${await res.text()}`);
  return ((await res.json()) as { access_token: string }).access_token;
}

/** Live nodes the cluster lists (GET /api/v1/ws/stats as the superuser); -1 if unanswered. */
async function liveNodes(port: number, token: string): Promise<number> {
  try {
    const res = await fetch(`http://127.0.0.1:${port}/api/v1/ws/stats`, {
      headers: { authorization: `Bearer ${token}` },
    });
    if (res.status !== 200) return -1;
    return ((await res.json()) as { nodes: unknown[] }).nodes.length;
  } catch {
    return -1;
  }
}

const MiB = (b: number) => round(b / 2 ** 20, 1);
const sum = (xs: number[]) => xs.reduce((a, x) => a + x, 0);

export function percentiles(sorted: number[]): Percentiles {
  const q = (p: number) =>
    sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(p * sorted.length) - 1))] ?? 0;
  return {
    count: sorted.length,
    minMs: round(sorted[0] ?? 0),
    p50Ms: round(q(0.5)),
    p90Ms: round(q(0.9)),
    p99Ms: round(q(0.99)),
    maxMs: round(sorted[sorted.length - 1] ?? 0),
  };
}

/** The share of `total` sockets that had it by each of ~60 points in time. */
function cdfOf(sorted: number[], total: number): { ms: number; share: number }[] {
  if (sorted.length === 0 || total === 0) return [];
  const max = sorted[sorted.length - 1] ?? 0;
  const out: { ms: number; share: number }[] = [];
  let k = 0;
  for (let i = 0; i <= 60; i++) {
    const t = (max * i) / 60;
    while (k < sorted.length && (sorted[k] ?? 0) <= t) k++;
    out.push({ ms: round(t, 2), share: round(k / total, 4) });
  }
  return out;
}

export async function runC100k(
  opts: C100kOptions,
): Promise<{ result: C100kResult; files: string[] }> {
  const started = new Date();
  const load0 = loadAvg();
  let loadOpen = load0;
  const t0 = performance.now();
  const log = progressLog("c100k", opts.progress, t0);
  const n = opts.connections;
  if (opts.clients * C100K_MAX_SOCKETS < n)
    throw new Error(`${opts.clients} clients cannot hold ${n} sockets (${C100K_MAX_SOCKETS} each)`);
  const tmp = mkdtempSync(join(tmpdir(), "kabar-bench-c100k-"));
  const dataDir = join(tmp, "data");
  const dbPath = join(dataDir, "kabar.db");
  const kabarEnv = tunedEnv(dataDir);
  const clusterEnv = (redisUrl: string) => ({
    ...kabarEnv,
    DATABASE_URL: `sqlite://${dbPath}`,
    REDIS_URL: redisUrl,
    // The supervisor starts workers 1… once worker 0 has logged "listening", an info line: at
    // LOG_LEVEL=warn only worker 0 ever starts (src/workers.ts as of this writing), so info here.
    ...(opts.mode === "workers" ? { WORKERS: String(opts.workers), LOG_LEVEL: "info" } : {}),
  });
  const socketTimeoutMs = 30_000;
  const failures: Failure[] = [];
  const background: QuietWait[] = [];
  const fail = failRecorder(failures, log);
  let logs = 0;
  const serverOpts = (name: string) => ({
    core: -1,
    logFile: join(tmp, `${name}-${++logs}.log`),
    gcDir: tmp,
  });
  const stops: (() => Promise<void>)[] = [];
  const nodePids: number[] = [];
  let supervisorPid: number | null = null;
  const result: Omit<C100kResult, "targets" | "durationSec" | "loadAvg"> = {
    version: 1,
    kind: "c100k",
    kabar: kabarSource(),
    startedAt: started.toISOString(),
    machine: machine(),
    settings: {
      connections: n,
      workers: opts.workers,
      clients: opts.clients,
      hosts: opts.hosts,
      mode: opts.mode,
      concurrency: opts.concurrency,
      quietWaitMs: opts.quietWaitMs,
      users: n,
      socketTimeoutMs,
      program:
        opts.mode === "workers"
          ? `WORKERS=${opts.workers} bun src/main.ts (one port, SO_REUSEPORT)`
          : `bun src/main.ts ×${opts.workers} (own ports)`,
      env: shown(clusterEnv("redis://127.0.0.1:<free port>"), tmp),
      redis: '/usr/bin/redis-server --port <free port> --save "" --appendonly no',
      pinned: false,
    },
    failures,
    background,
  };
  const agents: LineAgent[] = [];
  try {
    // The schema and the superuser (a standalone Kabar on the same file), the superuser's token
    // (it sends the broadcast, and is the model the users' tokens are signed like).
    const admin = await startKabar(kabarEnv, serverOpts("admin"));
    const stopAdmin = tracked(() => admin.stop());
    let adminToken: string;
    try {
      adminToken = await login(admin.port, ADMIN.email, ADMIN.password);
    } finally {
      await stopAdmin();
    }
    const emails = Array.from({ length: n }, (_, k) => `c${k}@c100k.example`);
    const tu = performance.now();
    const ids = await insertUsers(dbPath, emails, PASSWORD);
    const tokens = ids.map((id) => signLike(adminToken, id, SECRET));
    log(
      `${ids.length} users written to the store and signed in ${((performance.now() - tu) / 1000).toFixed(1)} s`,
    );

    const redis = await startRedis(-1);
    const stopRedis = tracked(() => redis.stop());
    stops.push(stopRedis);
    const env = clusterEnv(redis.url);
    let ports: number[];
    if (opts.mode === "workers") {
      const sup: ServerProc = await startKabar(env, serverOpts("workers"));
      supervisorPid = sup.pid;
      const stopSup = tracked(async () => {
        await sup.stop();
        // A worker still draining after its supervisor was killed: stop it by its pid.
        for (let i = 0; i < 100 && nodePids.some(alive); i++) await Bun.sleep(100);
        for (const pid of nodePids.filter(alive)) process.kill(pid, "SIGKILL");
      });
      stops.push(stopSup);
      ports = [sup.port];
      const deadline = Date.now() + 60_000;
      let listed = 0;
      let kids: number[] = [];
      while (Date.now() < deadline) {
        kids = childrenOf(sup.pid);
        listed = await liveNodes(sup.port, adminToken);
        if (kids.length === opts.workers && listed === opts.workers) break;
        await Bun.sleep(200);
      }
      if (kids.length !== opts.workers || listed !== opts.workers)
        throw new Error(
          `WORKERS=${opts.workers}: ${kids.length} workers started, ${listed} nodes listed`,
        );
      nodePids.push(...kids);
    } else {
      ports = [];
      for (let k = 0; k < opts.workers; k++) {
        const node = await startKabar(env, serverOpts(`node${k}`));
        stops.push(tracked(() => node.stop()));
        nodePids.push(node.pid);
        ports.push(node.port);
      }
    }
    log(
      `${opts.workers} nodes (${opts.mode}) up: pids ${nodePids.join(", ")}; redis-server pid ${redis.pid}`,
    );
    for (let k = 0; k < opts.clients; k++) {
      const a = LineAgent.start(`c100k-client${k}`, CLIENT, { core: -1, progress: opts.progress });
      agents.push(a);
      stops.push(tracked(() => a.stop()));
    }
    const shares = sharesOf(n, opts.clients);
    let from = 0;
    const files = shares.map((share, k) => {
      const file = join(tmp, `tokens-${k}.json`);
      writeFileSync(file, JSON.stringify({ tokens: tokens.slice(from, from + share) }));
      from += share;
      return file;
    });
    const rss0 = await settledRss(nodePids, tmp);
    const redis0 = rssBytes(redis.pid);
    const fd0 = nodePids.map(fdCount);
    if (opts.quietWaitMs > 0) {
      const w = await waitForQuiet("c100k open", opts.quietWaitMs);
      background.push(w);
      if (!w.quiet) log(`  machine busy before opening: other processes use ${w.otherCores} cores`);
    }
    loadOpen = loadAvg();
    const cpuOf = (pids: number[]) => sum(pids.map((p) => (alive(p) ? cpuSeconds(p) : 0)));
    const snap = () => ({
      nodes: cpuOf(nodePids),
      supervisor: supervisorPid === null ? 0 : cpuOf([supervisorPid]),
      redis: cpuOf([redis.pid]),
      clients: cpuOf(agents.map((a) => a.pid)),
      machine: machineCpu(),
    });
    log(
      `opening ${n} sockets from ${opts.clients} clients over ${opts.hosts} addresses (load average ${loadOpen.join(" ")})`,
    );
    const c0 = snap();
    const o0 = performance.now();
    let offset = 0;
    const opens = await Promise.all(
      agents.map((a, k) => {
        const cmd = {
          op: "open",
          file: files[k] ?? "",
          hosts: Array.from({ length: opts.hosts }, (_, h) => `127.0.0.${h + 1}`),
          ports,
          offset,
          concurrency: opts.concurrency,
          timeoutMs: socketTimeoutMs,
        };
        offset += shares[k] ?? 0;
        return a.call<C100kOpenResult>(cmd, 600_000);
      }),
    );
    const openMs = performance.now() - o0;
    const c1 = snap();
    const opened = sum(opens.map((o) => o.opened));
    log(`opened ${opened} of ${n} in ${(openMs / 1000).toFixed(1)} s`);
    await Bun.sleep(1000);
    const rss1 = await settledRss(nodePids, tmp);
    const redis1 = rssBytes(redis.pid);
    const fd1 = nodePids.map(fdCount);
    const serverCpu = c1.nodes - c0.nodes + (c1.supervisor - c0.supervisor) + (c1.redis - c0.redis);
    const ours = serverCpu + (c1.clients - c0.clients);
    result.open = {
      attempted: n,
      opened,
      failed: sum(opens.map((o) => o.failed)),
      errors: [...new Set(opens.flatMap((o) => o.errors))].slice(0, 10),
      openSec: round(openMs / 1000, 2),
      connPerSec: Math.round((opened * 1000) / openMs),
      perClientSec: opens.map((o) => round(o.ms / 1000, 2)),
      perNode: fd1.map((f, k) => f - (fd0[k] ?? 0)),
      cpuSec: {
        nodes: round(c1.nodes - c0.nodes, 2),
        supervisor: round(c1.supervisor - c0.supervisor, 2),
        redis: round(c1.redis - c0.redis, 2),
        clients: round(c1.clients - c0.clients, 2),
        other: round(Math.max(0, c1.machine.tasks - c0.machine.tasks - ours), 2),
        steal: round(c1.machine.steal - c0.machine.steal, 2),
      },
      serverCpuPerConnUs: round((serverCpu * 1e6) / Math.max(1, opened), 1),
    };
    const nodesBefore = sum(rss0.bytes);
    const nodesAfter = sum(rss1.bytes);
    result.memory = {
      afterGc: rss0.gc && rss1.gc,
      nodesBeforeMiB: MiB(nodesBefore),
      nodesAfterMiB: MiB(nodesAfter),
      nodesPerConnKiB: round((nodesAfter - nodesBefore) / 1024 / Math.max(1, opened), 2),
      redisBeforeMiB: MiB(redis0),
      redisAfterMiB: MiB(redis1),
      redisPerConnKiB: round((redis1 - redis0) / 1024 / Math.max(1, opened), 2),
      totalPerConnKiB: round(
        (nodesAfter - nodesBefore + redis1 - redis0) / 1024 / Math.max(1, opened),
        2,
      ),
      supervisorMiB: supervisorPid === null ? null : MiB(rssBytes(supervisorPid)),
      perNodeAfterMiB: rss1.bytes.map(MiB),
    };
    log(
      `RSS: nodes ${result.memory.nodesBeforeMiB} → ${result.memory.nodesAfterMiB} MiB, ${result.memory.nodesPerConnKiB} KiB per connection`,
    );

    // The broadcast: clock offsets first (min round trip of 5), then arm, send, collect.
    const offsets: number[] = [];
    let uncertainty = 0;
    for (const a of agents) {
      let best = { rtt: Number.POSITIVE_INFINITY, off: 0 };
      for (let i = 0; i < 5; i++) {
        const ta = epoch();
        const { now } = await a.call<{ now: number }>({ op: "clock" }, 5000);
        const tb = epoch();
        if (tb - ta < best.rtt) best = { rtt: tb - ta, off: now - (ta + tb) / 2 };
      }
      offsets.push(round(best.off, 3));
      uncertainty = Math.max(uncertainty, best.rtt / 2);
    }
    const marker = `c100k${process.pid}x${Date.now()}`;
    const armed = await Promise.all(
      agents.map((a) => a.call<{ sockets: number }>({ op: "arm", marker }, 10_000)),
    );
    log(`broadcast to ${sum(armed.map((x) => x.sockets))} sockets`);
    const b0 = snap();
    const sentAt = epoch();
    const res = await fetch(`http://127.0.0.1:${ports[0]}/api/v1/ws/broadcast`, {
      method: "POST",
      headers: { authorization: `Bearer ${adminToken}`, "content-type": "application/json" },
      body: JSON.stringify({ content: `${marker}|${sentAt.toFixed(3)}` }),
    });
    const restMs = epoch() - sentAt;
    const answer = (await res.json()) as { recipients?: number };
    if (res.status !== 200)
      throw new Error(`broadcast: HTTP ${res.status} ${JSON.stringify(answer)}`);
    const got = await Promise.all(
      agents.map((a, k) =>
        a.call<C100kCollectResult>(
          { op: "collect", sentAt, offsetMs: offsets[k] ?? 0, waitMs: 30_000 },
          60_000,
        ),
      ),
    );
    const b1 = snap();
    const bServers = b1.nodes - b0.nodes + (b1.supervisor - b0.supervisor) + (b1.redis - b0.redis);
    const bOurs = bServers + (b1.clients - b0.clients);
    const all = got.flatMap((g) => g.latenciesMs).sort((a, b) => a - b);
    const socketsAtSend = sum(got.map((g) => g.sockets));
    result.broadcast = {
      sockets: socketsAtSend,
      received: sum(got.map((g) => g.received)),
      lost: sum(got.map((g) => g.lost)),
      duplicates: sum(got.map((g) => g.duplicates)),
      closed: sum(got.map((g) => g.closed)),
      restMs: round(restMs, 2),
      restRecipients: answer.recipients ?? -1,
      latency: percentiles(all),
      clockOffsetsMs: offsets,
      clockUncertaintyMs: round(uncertainty, 3),
      cpuSec: {
        nodes: round(b1.nodes - b0.nodes, 2),
        redis: round(b1.redis - b0.redis, 2),
        clients: round(b1.clients - b0.clients, 2),
        other: round(Math.max(0, b1.machine.tasks - b0.machine.tasks - bOurs), 2),
      },
      cdf: cdfOf(all, socketsAtSend),
    };
    log(
      `broadcast: ${result.broadcast.received} received, ${result.broadcast.lost} lost; p50 ${result.broadcast.latency.p50Ms} ms, p99 ${result.broadcast.latency.p99Ms} ms, max ${result.broadcast.latency.maxMs} ms`,
    );
  } catch (e) {
    fail("c100k", e);
  } finally {
    // Clients first (they close their sockets), then the nodes, then redis-server.
    for (const stop of stops.reverse()) await stop().catch((e) => fail("cleanup", e));
  }
  const partial = { ...result };
  const final: C100kResult = {
    ...partial,
    durationSec: round((performance.now() - t0) / 1000, 1),
    loadAvg: { start: load0, beforeOpen: loadOpen, end: loadAvg() },
    targets: checkC100kTargets(partial),
  };
  const files = writeResults(
    opts.outDir,
    started,
    `c100k-${n}`,
    final,
    opts.writeLatest
      ? {
          name: n === 100_000 ? "c100k-latest" : `c100k-latest-${n}`,
          files: (svgName) => [
            ["md", c100kMarkdown(final, svgName)],
            ["svg", c100kSvg(final)],
          ],
        }
      : null,
  );
  tidyTemp(tmp, failures, log);
  return { result: final, files };
}

function parse(argv: string[]): C100kOptions | string {
  const value = (name: string): string | undefined => {
    const i = argv.indexOf(`--${name}`);
    if (i >= 0) return argv[i + 1];
    return argv.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3);
  };
  const int = (name: string): number | undefined => {
    const v = value(name);
    if (v === undefined) return undefined;
    const x = Number(v);
    return Number.isInteger(x) && x > 0 ? x : Number.NaN;
  };
  const connections = int("connections") ?? 100_000;
  if (!Number.isFinite(connections)) return "--connections needs a positive integer";
  const o: C100kOptions = {
    ...defaultOptions(connections),
    outDir: join(import.meta.dir, "results"),
  };
  for (const k of ["workers", "clients", "hosts", "concurrency"] as const) {
    const x = int(k);
    if (x === undefined) continue;
    if (!Number.isFinite(x)) return `--${k} needs a positive integer`;
    o[k] = x;
  }
  const quiet = value("quiet-seconds");
  if (quiet !== undefined) o.quietWaitMs = Math.max(0, Number(quiet) * 1000) || 0;
  const mode = value("mode");
  if (mode !== undefined) {
    if (mode !== "workers" && mode !== "nodes") return "--mode is workers or nodes";
    o.mode = mode;
  }
  return o;
}

async function main(): Promise<number> {
  const o = parse(process.argv.slice(2));
  if (typeof o === "string") {
    console.error(
      `bench:c100k: ${o}\nusage: bun bench/c100k.ts [--connections N] [--workers W] [--clients C] [--hosts H] [--mode workers|nodes] [--concurrency K] [--quiet-seconds S]`,
    );
    return 2;
  }
  stopOnSignals();
  process.stderr.write(`[c100k] load average ${loadAvg().join(" ")}\n`);
  const { result, files } = await runC100k(o);
  const name = o.connections === 100_000 ? "c100k-latest" : `c100k-latest-${o.connections}`;
  console.log(c100kMarkdown(result, `${name}.svg`));
  console.log(`wrote ${files.join(", ")}`);
  const missed = result.targets.filter((t) => t.met === false).length;
  if (missed > 0) console.log(`${missed} target(s) not met`);
  return 0;
}

if (import.meta.main) runMain("bench:c100k", main);
