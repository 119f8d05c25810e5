// The history benchmarks (bench/history.ts, bench/storm.ts) in miniature, so they never rot: a
// tiny history on/off fan-out run (1 node and 2 nodes + Redis) and a tiny reconnect storm (100
// clients over 2 nodes, one SIGKILLed), each checked for complete data (timings never asserted);
// and their target checks on made-up results, proving that missing data fails.
import { expect, test } from "bun:test";
import { HISTORY_PROFILES, HISTORY_SIDES, runHistory } from "../bench/history.ts";
import type { StormCollectResult } from "../bench/history-client.ts";
import { checkHistoryTargets, checkStormTargets } from "../bench/history-report.ts";
import { perSenderRate, runStorm, STORM_PROFILES } from "../bench/storm.ts";
import { redisRuns, tinyRun } from "./bench-tiny.ts";

const runs = redisRuns("history");

test.skipIf(!runs)(
  "bench:history tiny run: every side measured, cluster sides split over 2 nodes, 0 lost, nothing missing",
  async () => {
    await tinyRun(
      "history",
      (outDir) =>
        runHistory({
          profile: "tiny",
          outDir,
          writeLatest: true,
          progress: false,
        }),
      (result) => {
        const p = result.settings;
        let cpuSec = 0;
        for (const key of HISTORY_SIDES) {
          const side = result.sides[key];
          if (!side) throw new Error(`side ${key} is missing`);
          expect(side.historySize).toBe(key.endsWith("On") ? 100 : 0);
          for (const run of side.runs) {
            expect(run.repeats).toHaveLength(p.repeats);
            expect(run.received).toBe(run.expected);
            expect(run.lost).toBe(0);
            expect(run.duplicates).toBe(0);
            expect(run.latency.count).toBeGreaterThan(0);
            // Read in 10 ms clock ticks: a tiny window on a fast machine can stay under one.
            expect(run.serverCpuSec).toBeGreaterThanOrEqual(0);
            cpuSec += run.serverCpuSec;
          }
        }
        expect(cpuSec).toBeGreaterThan(0);
        const half = (p.rooms * p.members) / 2;
        expect(result.sides.twoOn?.socketsPerNode).toEqual([[half, half]]);
        expect(result.sides.twoOff?.processes).toEqual(["node A", "node B", "redis-server"]);
        expect(result.targets).toHaveLength(3);
      },
      ["history-latest-tiny.json", "history-latest-tiny.md", "history-latest-tiny.svg"],
    );
  },
  30_000,
);

test.skipIf(!runs)(
  "bench:storm tiny run: node B's clients all recover on node A, no gap, no duplicate, all caught up",
  async () => {
    await tinyRun(
      "storm",
      (outDir) =>
        runStorm({
          profile: "tiny",
          outDir,
          writeLatest: true,
          progress: false,
        }),
      (result) => {
        const p = result.settings;
        const n = p.rooms * p.members;
        expect(result.open?.opened).toBe(n);
        expect(result.open?.onB).toBe(n / 2);
        const c = result.collect;
        if (!c) throw new Error("no collected result");
        expect(c.closed).toBe(n / 2);
        expect(c.closedOnA).toBe(0);
        expect(c.recovered).toBe(n / 2);
        expect(c.holes).toBe(0);
        expect(c.incomplete).toBe(0);
        expect(c.duplicates).toBe(0);
        expect(c.epochChanges).toBe(0);
        expect(c.allCaughtUpMs).not.toBeNull();
        expect(c.sentPerRoom).toEqual(c.roomTop);
      },
    );
  },
  30_000,
);

test("history targets: a missing side or repeat fails the ratio, never passes it", () => {
  const settings = HISTORY_PROFILES.full;
  const none = checkHistoryTargets({ settings, sides: {}, failures: [] });
  expect(none).toHaveLength(3);
  for (const t of none) {
    expect(t.met).toBe(false);
    expect(t.measured).toContain("MISSING");
  }
});

test("storm targets: no storm result, or a client that never caught up, fails", () => {
  const p = STORM_PROFILES.full;
  const settings = { ...p, perSenderMsgPerSec: perSenderRate(p) };
  expect(settings.perSenderMsgPerSec).toBe(1);
  const none = checkStormTargets({ settings, failures: [] });
  for (const t of none) {
    expect(t.met).toBe(false);
    expect(t.measured).toContain("MISSING");
  }
  const times = { count: 500, p50Ms: 100, p99Ms: 200, maxMs: 250 };
  const collect: StormCollectResult = {
    sockets: 1000,
    closed: 500,
    closedOnA: 0,
    rejoined: 500,
    recovered: 500,
    notRecovered: 0,
    gaveUp: 0,
    attempts: 500,
    maxAttempts: 1,
    socketsWithGaps: 0,
    holes: 0,
    socketsWithDuplicates: 0,
    duplicates: 0,
    epochChanges: 0,
    incomplete: 0,
    sentPerRoom: Array(10).fill(75),
    roomTop: Array(10).fill(75),
    deliveries: 75_000,
    deliveriesPerSecBeforeKill: 5000,
    replayed: 500,
    closeSeen: times,
    rejoinedAt: times,
    caughtUp: times,
    allCaughtUpMs: 250,
    errorFrames: 0,
    errors: [],
  };
  const open = { opened: 1000, failed: 0, onA: 500, onB: 500, ms: 1000, errors: [] };
  const ok = checkStormTargets({ settings, failures: [], open, collect });
  expect(ok.map((t) => t.met)).toEqual([true, true, true, true, true]);
  const late = checkStormTargets({
    settings,
    failures: [],
    open,
    collect: { ...collect, allCaughtUpMs: null, caughtUp: { ...times, count: 499 } },
  });
  expect(late[3]?.met).toBe(false);
  expect(late[3]?.measured).toContain("MISSING");
  const holes = checkStormTargets({
    settings,
    failures: [],
    open,
    collect: { ...collect, holes: 3, socketsWithGaps: 1, recovered: 499, notRecovered: 1 },
  });
  expect(holes[0]?.met).toBe(false);
  expect(holes[1]?.met).toBe(false);
});
