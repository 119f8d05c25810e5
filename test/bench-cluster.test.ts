// The cluster benchmarks (bench/cluster.ts, bench/c100k.ts) in miniature, so they never rot: a
// tiny fan-out run (bare Bun, 1 node, 1 node + Redis, 2 nodes + Redis) and 1,000 connections over
// 2 workers with one broadcast, each checked for complete data and nothing lost (timings are
// never asserted); and their target checks on made-up results, proving that missing data fails.
import { expect, test } from "bun:test";
import { defaultOptions, runC100k } from "../bench/c100k.ts";
import { checkC100kTargets } from "../bench/c100k-report.ts";
import { runCluster } from "../bench/cluster.ts";
import { CLUSTER_PROFILES, SIDE_KEYS } from "../bench/cluster-profiles.ts";
import { checkClusterTargets } from "../bench/cluster-report.ts";
import type { FanoutResult } from "../bench/commands.ts";
import { combine, type FanoutMeta } from "../bench/paired.ts";
import { redisRuns, tinyRun } from "./bench-tiny.ts";

const runs = redisRuns("cluster");

test.skipIf(!runs)(
  "bench:cluster tiny run: every side and mode measured, members split over 2 nodes, 0 lost",
  async () => {
    // Nothing missing (tinyRun); the targets this profile does not define are n/a, the rest met.
    await tinyRun(
      "cluster",
      (outDir) =>
        runCluster({
          profile: "tiny",
          outDir,
          writeLatest: true,
          progress: false,
        }),
      (result) => {
        const p = result.settings;
        let cpuSec = 0;
        for (const key of SIDE_KEYS) {
          const side = result.sides[key];
          if (!side) throw new Error(`side ${key} is missing`);
          expect(side.runs.map((r) => r.mode)).toEqual([
            "closed",
            ...p.rates.map(() => "rate" as const),
          ]);
          for (const run of side.runs) {
            expect(run.repeats).toHaveLength(p.repeats);
            expect(run.sent).toBeGreaterThan(0);
            expect(run.received).toBe(run.expected);
            expect(run.lost).toBe(0);
            expect(run.duplicates).toBe(0);
            expect(run.unexpectedCloses).toBe(0);
            expect(run.latency.count).toBeGreaterThan(0);
            // Read in 10 ms clock ticks: a tiny window on a fast machine can stay under one.
            expect(run.serverCpuSec).toBeGreaterThanOrEqual(0);
            cpuSec += run.serverCpuSec;
            // One CPU reading per server process: both nodes and redis-server.
            for (const y of run.repeats) expect(y.pidCpuSec).toHaveLength(side.processes.length);
          }
        }
        expect(result.sides.twoNodes?.processes).toEqual(["node A", "node B", "redis-server"]);
        expect(cpuSec).toBeGreaterThan(0);
        const half = (p.rooms * p.members) / 2;
        expect(result.sides.twoNodes?.socketsPerNode).toEqual([[half, half]]);
      },
      ["cluster-latest-tiny.json", "cluster-latest-tiny.md", "cluster-latest-tiny.svg"],
    );
  },
  30_000,
);

test.skipIf(!runs)(
  "bench:c100k short run: 1,000 users' sockets over 2 workers, all welcomed, one broadcast reaches every one",
  async () => {
    await tinyRun(
      "c100k",
      (outDir) =>
        runC100k({
          ...defaultOptions(1000),
          workers: 2,
          clients: 2,
          hosts: 2,
          quietWaitMs: 0,
          outDir,
          writeLatest: true,
          progress: false,
        }),
      (result) => {
        expect(result.open?.opened).toBe(1000);
        expect(result.open?.failed).toBe(0);
        // Both workers took sockets (SO_REUSEPORT spreads them).
        expect(result.open?.perNode).toHaveLength(2);
        for (const k of result.open?.perNode ?? []) expect(k).toBeGreaterThan(0);
        expect(result.memory?.afterGc).toBe(true);
        expect(result.broadcast?.sockets).toBe(1000);
        expect(result.broadcast?.received).toBe(1000);
        expect(result.broadcast?.lost).toBe(0);
        expect(result.broadcast?.duplicates).toBe(0);
        expect(result.broadcast?.latency.count).toBe(1000);
      },
    );
  },
  30_000,
);

/** A made-up fan-out repeat: `cpu` per server process. */
const rep = (cpu: number[], p99 = 1): FanoutResult => ({
  sent: 1000,
  expected: 100_000,
  received: 100_000,
  lost: 0,
  duplicates: 0,
  windowDeliveries: 100_000,
  windowMs: 4000,
  deliveriesPerSec: 25_000,
  serverCpuSec: cpu.reduce((a, x) => a + x, 0),
  pidCpuSec: cpu,
  clientCpuSec: 1,
  otherCpuSec: 0,
  stealSec: 0,
  latency: { count: 1000, meanMs: 0.5, p50Ms: 0.5, p95Ms: 0.9, p99Ms: p99, maxMs: 2 },
  unexpectedCloses: 0,
  errorFrames: 0,
  rateLimited: 0,
  botFrames: 0,
});

const meta = (mode: "closed" | "rate", rate: number | null): FanoutMeta => ({
  label: mode === "closed" ? "max (closed loop)" : "20k/s",
  mode,
  rate,
  load: "shared users",
  senders: 2,
  users: 4,
  suffix: "",
  perSenderMsgPerSec: null,
});

test("cluster targets: met on complete data, missed (never passed) when anything is missing", () => {
  const settings = { ...CLUSTER_PROFILES.full, repeats: 1 };
  const side = (processes: string[], cpu: number[], p99 = 1) => ({
    key: "oneNode" as const,
    label: "",
    processes,
    socketsPerNode: [[500, 500]],
    runs: [
      combine(meta("closed", null), [rep(cpu)]),
      combine(meta("rate", 20_000), [rep(cpu, p99)]),
    ],
  });
  const complete = {
    baseline: side(["bare Bun"], [1]),
    oneNode: side(["node"], [1]),
    oneNodeRedis: side(["node", "redis-server"], [1, 0.1]),
    twoNodes: side(["node A", "node B", "redis-server"], [0.6, 0.6, 0.1], 2.5),
  };
  const byName = (sides: Parameters<typeof checkClusterTargets>[0]["sides"]) =>
    checkClusterTargets({ settings, sides, failures: [] });
  const ok = byName(complete);
  expect(ok.map((t) => t.met)).toEqual([true, true, true, true, true, true]);
  // 1.3 CPU-s against 1 for the same deliveries: 0.77× one node.
  expect(ok[0]?.measured).toStartWith("0.77×");
  // No second node: the ratio, the p99 and the split are missing, so missed.
  const { twoNodes: _gone, ...noTwo } = complete;
  const missing = byName(noTwo);
  for (const k of [0, 1, 4]) {
    expect(missing[k]?.met).toBe(false);
    expect(missing[k]?.measured).toContain("MISSING");
  }
  // A repeat without redis-server's CPU reading is missing data too.
  const noRedisCpu = {
    ...complete,
    twoNodes: side(["node A", "node B", "redis-server"], [0.6, 0.6]),
  };
  expect(byName(noRedisCpu)[0]?.met).toBe(false);
  // Bare Bun over 2 ms: the p99 target is not judged (n/a), never passed.
  const noisy = { ...complete, baseline: side(["bare Bun"], [1], 2.5) };
  expect(byName(noisy)[1]?.met).toBeNull();
  expect(byName(noisy)[1]?.measured).toContain("NOT JUDGED");
  // A p99 over 3 ms on a quiet machine: missed.
  const slow = {
    ...complete,
    twoNodes: side(["node A", "node B", "redis-server"], [0.6, 0.6, 0.1], 3.5),
  };
  expect(byName(slow)[1]?.met).toBe(false);
});

test("c100k targets: a run with no broadcast or no memory reading fails", () => {
  const settings = {
    ...defaultOptions(100_000),
    users: 100_000,
    socketTimeoutMs: 30_000,
    program: "",
    env: {},
    redis: "",
    pinned: false as const,
  };
  const none = checkC100kTargets({ settings, failures: [] });
  for (const t of none) {
    expect(t.met).toBe(false);
    expect(t.measured).toContain("MISSING");
  }
});
