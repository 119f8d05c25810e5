// The benchmark harness (bench/) in miniature, so it never rots: a tiny run against a real Kabar
// (tuned and on its default settings) and the baseline, checked for shape and for zero lost
// messages (timings are never asserted); and the target checks on made-up results, proving that
// missing data fails a target and never passes it.
import { expect, test } from "bun:test";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { svg } from "../bench/chart.ts";
import type { FanoutResult } from "../bench/commands.ts";
import {
  combine,
  combineChurn,
  combineConnections,
  type FanoutMeta,
  type FanoutScenario,
} from "../bench/paired.ts";
import { PROFILES, type Profile } from "../bench/profiles.ts";
import { markdown } from "../bench/report.ts";
import type { BenchResult, ServerResults, TargetCheck } from "../bench/result.ts";
import { runBench } from "../bench/run.ts";
import type { ConnectionsRun } from "../bench/scenarios.ts";
import { checkTargets, TARGETS } from "../bench/targets.ts";

test.skipIf(process.platform !== "linux")(
  "bench harness: a tiny run reports every scenario for Kabar (tuned, defaults) and the baseline, 0 lost",
  async () => {
    const out = mkdtempSync(join(tmpdir(), "kabar-bench-test-"));
    try {
      const { result, files } = await runBench({
        profile: "tiny",
        outDir: out,
        writeLatest: true,
        progress: false,
      });
      expect(files).toHaveLength(4);
      for (const f of files) expect(existsSync(f)).toBe(true);
      expect(files.map((f) => f.slice(out.length + 1)).slice(1)).toEqual([
        "latest-tiny.json",
        "latest-tiny.md",
        "latest-tiny.svg",
      ]);
      expect(result.failures).toEqual([]);
      expect(result.machine.cores).toBeGreaterThan(0);
      expect(result.machine.bun).toBe(Bun.version);
      const s = result.settings;
      const conns = [
        result.kabar.connections,
        result.kabar.connectionsShared,
        result.kabarDefaults.connections,
        result.baseline.connections,
      ];
      for (const c of conns) {
        if (!c) throw new Error("a connections result is missing");
        expect(c.repeats).toHaveLength(s.connections.repeats);
        expect(c.attempted).toBe(s.connections.n * s.connections.repeats);
        expect(c.failed).toBe(0);
        expect(c.opened).toBe(c.attempted);
        expect(c.pulse.received).toBe(c.attempted);
        expect(c.pulse.lost).toBe(0);
        // RSS is read after a full GC in the server (bench/gc-hook.ts): the hook must answer.
        expect(c.rssAfterGc).toBe(true);
      }
      // The one-socket-per-user shape really is one user per socket; the shared one is not.
      expect(result.kabar.connections?.users).toBe(s.connections.n);
      expect(result.kabarDefaults.connections?.users).toBe(s.connections.n);
      expect(result.kabar.connectionsShared?.users).toBe(s.users);
      // Tuned Kabar logs nothing per connection; the baseline has no log.
      expect(result.kabar.connections?.logLines).toBe(0);
      expect(result.baseline.connections?.logLines).toBeNull();
      for (const r of [result.kabar, result.baseline, result.kabarDefaults]) {
        for (const run of r.fanout?.runs ?? []) {
          expect(run.sent).toBeGreaterThan(0);
          expect(run.received).toBe(run.expected);
          expect(run.lost).toBe(0);
          expect(run.duplicates).toBe(0);
          expect(run.unexpectedCloses).toBe(0);
          expect(run.rateLimited).toBe(0);
          expect(run.latency.count).toBeGreaterThan(0);
        }
      }
      expect(result.kabar.fanout?.runs).toHaveLength(1 + s.fanout.rates.length);
      expect(result.baseline.fanout?.runs).toHaveLength(2 + s.fanout.rates.length);
      const dflt = result.kabarDefaults.fanout?.runs;
      expect(dflt).toHaveLength(1);
      // Default settings: the bot is on and answers every message; nothing is refused.
      expect(dflt?.[0]?.botFrames).toBe(dflt?.[0]?.sent);
      expect(dflt?.[0]?.users).toBe(s.fanout.rooms * s.fanout.members);
      for (const r of [result.kabar, result.baseline]) {
        expect(r.churn?.repeats).toHaveLength(s.churn.repeats);
        expect(r.churn?.ops).toBeGreaterThan(0);
        expect(r.churn?.failed).toBe(0);
        expect(r.churn?.rssAfterGc).toBe(true);
        expect(r.noisy?.quiet.lost).toBe(0);
        expect(r.noisy?.noisy.lost).toBe(0);
        expect(r.noisy?.flood.sent).toBeGreaterThan(0);
        expect(r.noisy?.flood.rateLimited).toBeGreaterThan(0);
      }
      const met = (prefix: string) => result.targets.find((t) => t.name.startsWith(prefix))?.met;
      expect(met("messages lost")).toBe(true);
      expect(met("failed connections")).toBe(true);
      expect(met("default settings row")).toBe(true);
      expect(met("every phase ran")).toBe(true);
      const saved = JSON.parse(readFileSync(files[0] as string, "utf8")) as typeof result;
      expect(saved.kabar.fanout?.runs[0]?.lost).toBe(0);
      expect(saved.kabar.connections?.repeats).toHaveLength(s.connections.repeats);
      expect(readFileSync(files[1] as string, "utf8")).toBe(
        readFileSync(files[0] as string, "utf8"),
      );
      const md = readFileSync(files[2] as string, "utf8");
      expect(md).toContain("| target | goal | measured | met |");
      expect(md).toContain("## Settings of every row");
      expect(md).toContain("Kabar range");
      const chart = readFileSync(files[3] as string, "utf8");
      expect(chart.startsWith("<svg")).toBe(true);
      expect(chart.trimEnd().endsWith("</svg>")).toBe(true);
    } finally {
      rmSync(out, { recursive: true, force: true });
    }
  },
  60_000,
);

// ---- target checks on made-up results

/** The full profile with two repeats of everything (what the fixtures below provide). */
const PROFILE: Profile = {
  ...PROFILES.full,
  connections: { ...PROFILES.full.connections, repeats: 2 },
  fanout: { ...PROFILES.full.fanout, repeats: 2 },
  noisy: { ...PROFILES.full.noisy, repeats: 2 },
};

function connRun(over: Partial<ConnectionsRun> = {}): ConnectionsRun {
  return {
    shape: "one socket per user",
    n: 1000,
    users: 1000,
    opened: 1000,
    failed: 0,
    openSec: 0.1,
    connPerSec: 10_000,
    rssBeforeMiB: 30,
    rssAfterMiB: 32,
    rssPerConnKiB: 2,
    rssAfterGc: true,
    cpuSec: 0.05,
    cpuPerConnUs: 50,
    serverCores: 0.5,
    logLines: 0,
    otherCpuSec: 0,
    stealSec: 0,
    pulse: { expected: 1000, received: 1000, lost: 0, ms: 5 },
    errors: [],
    ...over,
  };
}

function fanRep(over: Partial<FanoutResult> = {}, p99Ms = 1): FanoutResult {
  return {
    sent: 1000,
    expected: 100_000,
    received: 100_000,
    lost: 0,
    duplicates: 0,
    windowDeliveries: 100_000,
    windowMs: 4000,
    deliveriesPerSec: 25_000,
    serverCpuSec: 0.1,
    clientCpuSec: 0.1,
    otherCpuSec: 0,
    stealSec: 0,
    latency: { count: 100_000, meanMs: 0.5, p50Ms: 0.5, p95Ms: 0.8, p99Ms, maxMs: p99Ms * 2 },
    unexpectedCloses: 0,
    errorFrames: 0,
    rateLimited: 0,
    botFrames: 0,
    ...over,
  };
}

const meta = (
  label: string,
  mode: "closed" | "rate",
  rate: number | null,
  load: FanoutMeta["load"] = "shared users",
): FanoutMeta => ({
  label,
  mode,
  rate,
  load,
  senders: 2,
  users: 4,
  suffix: "",
  perSenderMsgPerSec: rate === null ? null : 1,
});

function fanout(reps: () => FanoutResult[], defaults: boolean): FanoutScenario {
  const runs = defaults
    ? [combine(meta("20k/s", "rate", 20_000, "one socket per user"), reps())]
    : [
        combine(meta("max (closed loop)", "closed", null), reps()),
        combine(meta("20k/s", "rate", 20_000), reps()),
        combine(meta("50k/s", "rate", 50_000), reps()),
      ];
  return { rooms: 10, members: 100, window: 4, runs };
}

function side(kind: "kabar" | "defaults" | "baseline"): ServerResults {
  const conns = () => combineConnections([connRun(), connRun()]);
  const reps = () => [fanRep(), fanRep()];
  if (kind === "defaults") return { connections: conns(), fanout: fanout(reps, true) };
  const quiet = combine(meta("quiet", "rate", 5000), reps());
  const noisy = combine(meta("noisy", "rate", 5000), reps());
  const churnRun = {
    ops: 100,
    failed: 0,
    ms: 1000,
    opsPerSec: 100,
    errors: [],
    cpuSec: 0.01,
    cpuPerOpUs: 100,
    serverCores: 0.5,
    otherCpuSec: 0,
    stealSec: 0,
  };
  const results: ServerResults = {
    connections: conns(),
    fanout: {
      ...fanout(reps, false),
      runs: [...fanout(reps, false).runs, ...(kind === "baseline" ? fanout(reps, true).runs : [])],
    },
    churn: combineChurn([churnRun], {
      before: { bytes: 1, gc: true },
      after: { bytes: 1, gc: true },
    }),
    noisy: {
      rooms: 4,
      members: 50,
      deliveriesPerSec: 5000,
      quiet,
      noisy,
      flood: {
        sent: 1,
        malformed: 0,
        rateLimited: 1,
        otherErrors: 0,
        echoes: 0,
        unexpectedCloses: 0,
      },
      p99Ratio: 1,
    },
  };
  if (kind === "kabar") results.connectionsShared = conns();
  return results;
}

type Input = Parameters<typeof checkTargets>[0];
const complete = (): Input => ({
  kabar: side("kabar"),
  kabarDefaults: side("defaults"),
  baseline: side("baseline"),
  settings: PROFILE,
  failures: [],
});

const find = (targets: TargetCheck[], prefix: string): TargetCheck => {
  const t = targets.find((x) => x.name.startsWith(prefix));
  if (!t) throw new Error(`no target ${prefix}`);
  return t;
};

test("targets: complete results meet every target", () => {
  const targets = checkTargets(complete());
  expect(targets.filter((t) => t.met !== true).map((t) => t.name)).toEqual([]);
});

test("targets: a fan-out window with no latency samples is a miss, not a 0 ms pass", () => {
  const r = complete();
  const empty = { count: 0, meanMs: 0, p50Ms: 0, p95Ms: 0, p99Ms: 0, maxMs: 0 };
  const fan = r.kabar.fanout as FanoutScenario;
  fan.runs[1] = combine(meta("20k/s", "rate", 20_000), [fanRep(), fanRep({ latency: empty })]);
  fan.runs[2] = combine(meta("50k/s", "rate", 50_000), []);
  const targets = checkTargets(r);
  const at20 = find(targets, "p99 latency at ~20k");
  expect(at20.met).toBe(false);
  expect(at20.measured).toContain("without latency samples");
  const at50 = find(targets, "p99 latency at ~50k");
  expect(at50.met).toBe(false);
  expect(at50.measured).toContain("0 of 2 repeats");
});

test("targets: a missing scenario fails every target that needs it", () => {
  const r = complete();
  delete r.kabar.fanout;
  delete r.kabar.connections;
  delete r.kabarDefaults.fanout;
  const targets = checkTargets(r);
  for (const name of [
    "server RSS",
    "server CPU per connection",
    "connections opened",
    "deliveries per server-CPU-second",
    "p99 latency at ~20k",
    "p99 latency at ~50k",
    "messages lost",
    "failed connections",
    "default settings row",
  ]) {
    const t = find(targets, name);
    expect(t.met).toBe(false);
    expect(t.measured).toContain("MISSING");
  }
  expect(find(targets, "noisy neighbour").met).toBe(true);
});

test("targets: the baseline's missing data fails a ratio too", () => {
  const r = complete();
  delete r.baseline.connections;
  r.baseline.fanout = { ...(r.baseline.fanout as FanoutScenario), runs: [] };
  const targets = checkTargets(r);
  expect(find(targets, "connections opened").met).toBe(false);
  expect(find(targets, "deliveries per server-CPU-second").met).toBe(false);
});

test("targets: failed connections are a miss of their own", () => {
  const r = complete();
  r.kabar.connections = combineConnections([connRun(), connRun({ failed: 3, opened: 997 })]);
  const t = find(checkTargets(r), "failed connections");
  expect(t.met).toBe(false);
  expect(t.measured).toContain("tuned connections 3");
  const churn = complete();
  if (churn.kabar.churn) churn.kabar.churn.failed = 1;
  expect(find(checkTargets(churn), "failed connections").met).toBe(false);
});

test("targets: a GC hook that did not answer fails the RSS target", () => {
  const r = complete();
  r.kabar.connections = combineConnections([connRun(), connRun({ rssAfterGc: false })]);
  const targets = checkTargets(r);
  expect(find(targets, "server RSS").met).toBe(false);
  expect(find(targets, "server RSS").measured).toContain("GC hook did not answer");
  expect(find(targets, "every phase ran").met).toBe(false);
});

test("targets: fewer repeats than planned, a harness failure, refused frames: each a miss", () => {
  const few = complete();
  few.kabar.connections = combineConnections([connRun()]);
  expect(find(checkTargets(few), "server CPU per connection").measured).toContain("1 of 2 repeats");
  expect(find(checkTargets(few), "server CPU per connection").met).toBe(false);
  const failed = complete();
  failed.failures = [{ phase: "churn", error: "boom" }];
  expect(find(checkTargets(failed), "every phase ran").met).toBe(false);
  const refused = complete();
  const d = refused.kabarDefaults.fanout as FanoutScenario;
  d.runs[0] = combine(meta("20k/s", "rate", 20_000, "one socket per user"), [
    fanRep({ rateLimited: 2, errorFrames: 2 }),
    fanRep(),
  ]);
  expect(find(checkTargets(refused), "default settings row").met).toBe(false);
});

test("targets: noisy neighbour without samples has no ratio and misses", () => {
  const r = complete();
  const n = r.kabar.noisy;
  if (!n) throw new Error("fixture");
  n.p99Ratio = null;
  n.quiet = combine(meta("quiet", "rate", 5000), []);
  const t = find(checkTargets(r), "noisy neighbour");
  expect(t.met).toBe(false);
});

test("fan-out repeats: latency max is the max of all repeats, not a median", () => {
  const run = combine(meta("20k/s", "rate", 20_000), [fanRep({}, 1), fanRep({}, 1), fanRep({}, 9)]);
  expect(run.latency.p99Ms).toBe(1);
  expect(run.latency.maxMs).toBe(18);
});

test("report and chart: missing data shows as missing; chart target lines come from TARGETS", () => {
  const r = complete();
  const result: BenchResult = {
    version: 2,
    profile: "full",
    startedAt: "2026-01-01T00:00:00.000Z",
    durationSec: 1,
    machine: {
      cores: 2,
      cpuModel: "test",
      memoryGiB: 1,
      kernel: "x",
      bun: Bun.version,
      openFilesLimit: 1,
    },
    pinned: true,
    serverCore: 1,
    clientCore: 0,
    ...r,
    servers: [],
    targets: [],
    background: [],
  };
  const chart = svg(result);
  for (const t of TARGETS.p99) expect(chart).toContain(`target ≤ ${t.maxMs}<`);
  expect(chart).toContain(`target ≥ ${TARGETS.connPerSecRatio}×`);
  delete result.kabar.churn;
  result.targets = checkTargets(result);
  const md = markdown(result);
  expect(md).toContain("failed connections");
  expect(md).toContain("MISSING: tuned churn");
  expect(svg(result)).toContain("missing");
});
