// Issue 3's targets (TARGETS; the chart draws its target lines from it too), checked against one
// run's figures. Missing data never passes: a scenario that did not run, fewer repeats than the
// profile planned, a window with no latency sample, no server CPU reading, a GC hook that did
// not answer or a harness phase that threw is named in `measured` and the target is not met.
// `met: null` only where the profile itself does not define the target (the tiny smoke run's
// shapes and rates); failed connections are a target of their own (0).
import type { FanoutRun } from "./paired.ts";
import type { BenchResult, ServerResults, TargetCheck } from "./result.ts";
import type { ConnectionsResult } from "./scenarios.ts";
import { round } from "./stats.ts";

export const TARGETS = {
  /** Kabar, connections in the one-socket-per-user shape. */
  rssPerConnKiB: 2.5,
  cpuPerConnUs: 100,
  /** Kabar ÷ baseline. */
  connPerSecRatio: 0.75,
  deliveriesPerCpuSecRatio: 0.9,
  /** The fan-out shape the fan-out targets are set for. */
  fanoutShape: { rooms: 10, members: 100 },
  /** p99 latency at fixed delivery rates. */
  p99: [
    { deliveriesPerSec: 20_000, maxMs: 2 },
    { deliveriesPerSec: 50_000, maxMs: 3 },
  ],
  /** Others' p99 beside the flooder ÷ quiet. */
  noisyP99Ratio: 2,
  /** Below this share of its core the server was not what set the pace of a closed loop. */
  saturatedCores: 0.9,
} as const;

/** The p99 limit (ms) at a fixed rate, or null where no target is set. */
export const p99Target = (deliveriesPerSec: number | null): number | null =>
  TARGETS.p99.find((t) => t.deliveriesPerSec === deliveriesPerSec)?.maxMs ?? null;

/** Kabar ÷ baseline, or 0 when the baseline figure is 0. */
export const ratio = (k: number, b: number): number => (b === 0 ? 0 : round(k / b, 2));

/** "1.84–2.01" over the repeats (min–max), or the one value; "–" for none. */
export function range(values: number[], digits = 2): string {
  const v = values.filter((x) => Number.isFinite(x));
  if (v.length === 0) return "–";
  const lo = round(Math.min(...v), digits);
  const hi = round(Math.max(...v), digits);
  return lo === hi ? String(lo) : `${lo}–${hi}`;
}

/** Kabar ÷ baseline per repeat, paired by repeat number: "0.95–1.10×". */
function pairedRange(k: number[], b: number[]): string {
  const n = Math.min(k.length, b.length);
  const r = Array.from({ length: n }, (_, i) => ratio(k[i] ?? 0, b[i] ?? 0));
  return `${range(r)}×`;
}

const fanoutApplies = (s: BenchResult["settings"]) =>
  s.fanout.rooms === TARGETS.fanoutShape.rooms && s.fanout.members === TARGETS.fanoutShape.members;

/** What is missing from a connections result (empty: complete). */
function connMissing(
  c: ConnectionsResult | undefined,
  planned: number,
  label: string,
  gc = false,
): string[] {
  if (!c) return [`${label}: not measured`];
  const out: string[] = [];
  if (c.repeats.length < planned) out.push(`${label}: ${c.repeats.length} of ${planned} repeats`);
  if (c.opened === 0) out.push(`${label}: no socket opened`);
  if (gc && !c.rssAfterGc) out.push(`${label}: GC hook did not answer`);
  return out;
}

/** What is missing from a fan-out run (empty: complete). */
function runMissing(run: FanoutRun | undefined, planned: number, label: string, cpu = false) {
  if (!run) return [`${label}: not measured`];
  const out: string[] = [];
  if (run.repeats.length < planned)
    out.push(`${label}: ${run.repeats.length} of ${planned} repeats`);
  if (run.repeatsWithoutSamples > 0)
    out.push(`${label}: ${run.repeatsWithoutSamples} repeat(s) without latency samples`);
  if (run.latency.count === 0) out.push(`${label}: no latency samples`);
  if (cpu && run.serverCpuSec <= 0) out.push(`${label}: no server CPU reading`);
  return out;
}

const missingText = (m: string[]) => (m.length ? `MISSING: ${m.join("; ")}. ` : "");

/** A closed-loop rate is the load client's pace when the server's core was not busy. */
export function clientBoundNote(serverCores: number[]): string {
  const top = Math.max(...serverCores.filter((x) => Number.isFinite(x)), 0);
  if (top >= TARGETS.saturatedCores) return "";
  return `client-bound: the server used at most ${Math.round(top * 100)}% of its core, so this ratio measures the load client more than the server`;
}

/** The shared-users fan-out run of `x` in `mode` (and at `rate`). */
export const sharedRun = (x: ServerResults, mode: "closed" | "rate", rate: number | null = null) =>
  x.fanout?.runs.find(
    (y) =>
      y.load === "shared users" &&
      y.mode === mode &&
      (mode === "closed" || y.targetDeliveriesPerSec === rate),
  );

/** The default-settings load's run (one socket per user) of `x`. */
export const defaultsRun = (x: ServerResults) =>
  x.fanout?.runs.find((y) => y.load === "one socket per user");

/**
 * Every message Kabar should have delivered and did not, across `x`'s scenarios, and the
 * scenarios whose count is missing.
 */
export function lostIn(
  x: ServerResults,
  expect: ("connections" | "connectionsShared" | "fanout" | "noisy")[],
): { lost: number; missing: string[] } {
  let lost = 0;
  const missing: string[] = [];
  for (const k of expect) {
    if (k === "fanout") {
      if (!x.fanout) missing.push("fan-out");
      else lost += x.fanout.runs.reduce((a, y) => a + y.lost, 0);
    } else if (k === "noisy") {
      if (!x.noisy) missing.push("noisy neighbour");
      else lost += x.noisy.quiet.lost + x.noisy.noisy.lost;
    } else {
      const c = x[k];
      if (!c) missing.push(k === "connections" ? "connections" : "connections (shared users)");
      else lost += c.pulse.lost;
    }
  }
  return { lost, missing };
}

/** Every message lost on `x` in the scenarios it ran (for captions). */
export const totalLost = (x: ServerResults): number =>
  lostIn(x, ["connections", "connectionsShared", "fanout", "noisy"]).lost;

/** Connections that failed or closed unexpectedly in `x`'s scenarios, and what is missing. */
function failedIn(
  x: ServerResults,
  label: string,
  expect: ("connections" | "connectionsShared" | "fanout" | "churn" | "noisy")[],
): { failed: number; parts: string[]; missing: string[] } {
  let failed = 0;
  const parts: string[] = [];
  const missing: string[] = [];
  const add = (what: string, n: number) => {
    failed += n;
    if (n > 0) parts.push(`${label} ${what} ${n}`);
  };
  for (const k of expect) {
    if (k === "connections" || k === "connectionsShared") {
      const c = x[k];
      if (!c) missing.push(`${label} ${k}`);
      else add(k === "connections" ? "connections" : "connections (shared)", c.failed);
    } else if (k === "fanout") {
      if (!x.fanout) missing.push(`${label} fan-out`);
      else
        add(
          "fan-out closes",
          x.fanout.runs.reduce((a, y) => a + y.unexpectedCloses, 0),
        );
    } else if (k === "churn") {
      if (!x.churn) missing.push(`${label} churn`);
      else add("churn", x.churn.failed);
    } else {
      const n = x.noisy;
      if (!n) missing.push(`${label} noisy neighbour`);
      else
        add(
          "noisy closes",
          n.quiet.unexpectedCloses + n.noisy.unexpectedCloses + n.flood.unexpectedCloses,
        );
    }
  }
  return { failed, parts, missing };
}

export function checkTargets(
  r: Pick<BenchResult, "kabar" | "kabarDefaults" | "baseline" | "settings" | "failures">,
): TargetCheck[] {
  const k = r.kabar;
  const b = r.baseline;
  const d = r.kabarDefaults;
  const st = r.settings;
  const connReps = st.connections.repeats;
  const fanReps = st.fanout.repeats;
  const kc = k.connections;
  const bc = b.connections;
  const kReps = kc?.repeats ?? [];
  const bReps = bc?.repeats ?? [];
  const out: TargetCheck[] = [];

  const rssMissing = [
    ...connMissing(kc, connReps, "Kabar", true),
    ...connMissing(bc, connReps, "baseline", true),
  ];
  const rss = kc?.rssPerConnKiB ?? Number.NaN;
  out.push({
    name: "server RSS per idle authenticated connection (one socket per user)",
    target: `≤ ${TARGETS.rssPerConnKiB} KiB`,
    measured: `${missingText(rssMissing)}${rss} KiB (repeats ${range(kReps.map((x) => x.rssPerConnKiB))}); baseline ${bc?.rssPerConnKiB ?? "–"} (${range(bReps.map((x) => x.rssPerConnKiB))}); shared users ${k.connectionsShared?.rssPerConnKiB ?? "–"}`,
    met: rssMissing.length === 0 && rss <= TARGETS.rssPerConnKiB,
  });

  const connMiss = [
    ...connMissing(kc, connReps, "Kabar"),
    ...connMissing(bc, connReps, "baseline"),
  ];
  const cpu = kc?.cpuPerConnUs ?? Number.NaN;
  out.push({
    name: "server CPU per connection (handshake, token, user, welcome, join; one socket per user)",
    target: `≤ ${TARGETS.cpuPerConnUs} µs`,
    measured: `${missingText(connMiss)}${cpu} µs (repeats ${range(kReps.map((x) => x.cpuPerConnUs))}); baseline ${bc?.cpuPerConnUs ?? "–"} (${range(bReps.map((x) => x.cpuPerConnUs))}); shared users ${k.connectionsShared?.cpuPerConnUs ?? "–"}`,
    met: connMiss.length === 0 && cpu <= TARGETS.cpuPerConnUs,
  });

  const connRatio = kc && bc ? ratio(kc.connPerSec, bc.connPerSec) : Number.NaN;
  const bound = clientBoundNote([...kReps, ...bReps].map((x) => x.serverCores));
  out.push({
    name: "connections opened per second (one socket per user)",
    target: `≥ ${TARGETS.connPerSecRatio}× baseline`,
    measured: `${missingText(connMiss)}${connRatio}× (${kc?.connPerSec ?? "–"}/s, repeats ${range(
      kReps.map((x) => x.connPerSec),
      0,
    )}, vs ${bc?.connPerSec ?? "–"}/s, ${range(
      bReps.map((x) => x.connPerSec),
      0,
    )}; paired repeats ${pairedRange(
      kReps.map((x) => x.connPerSec),
      bReps.map((x) => x.connPerSec),
    )})${bound ? `; ${bound}` : ""}`,
    met: connMiss.length === 0 && connRatio >= TARGETS.connPerSecRatio,
  });

  const applies = fanoutApplies(st);
  {
    const kr = sharedRun(k, "closed");
    const br = sharedRun(b, "closed");
    const miss = [
      ...runMissing(kr, fanReps, "Kabar", true),
      ...runMissing(br, fanReps, "baseline", true),
    ];
    const x = kr && br ? ratio(kr.deliveriesPerCpuSec, br.deliveriesPerCpuSec) : Number.NaN;
    const per = (y: FanoutRun | undefined) =>
      (y?.repeats ?? []).map((z) => (z.serverCpuSec > 0 ? z.windowDeliveries / z.serverCpuSec : 0));
    out.push({
      name: `deliveries per server-CPU-second, ${st.fanout.rooms} rooms × ${st.fanout.members} members, closed loop`,
      target: `≥ ${TARGETS.deliveriesPerCpuSecRatio}× baseline at ${TARGETS.fanoutShape.rooms} × ${TARGETS.fanoutShape.members}`,
      measured: `${missingText(miss)}${x}× (${kr?.deliveriesPerCpuSec ?? "–"}, repeats ${range(per(kr), 0)}, vs ${br?.deliveriesPerCpuSec ?? "–"}, ${range(per(br), 0)}; paired repeats ${pairedRange(per(kr), per(br))})`,
      met: applies ? miss.length === 0 && x >= TARGETS.deliveriesPerCpuSecRatio : null,
    });
  }
  for (const t of TARGETS.p99) {
    const planned =
      applies && st.fanout.rates.some((x) => x.deliveriesPerSec === t.deliveriesPerSec);
    const kr = sharedRun(k, "rate", t.deliveriesPerSec);
    const br = sharedRun(b, "rate", t.deliveriesPerSec);
    const miss = planned ? runMissing(kr, fanReps, "Kabar") : [];
    const p99 = kr?.latency.p99Ms ?? Number.NaN;
    out.push({
      name: `p99 latency at ~${t.deliveriesPerSec / 1000}k deliveries/s`,
      target: `≤ ${t.maxMs} ms`,
      measured:
        !planned && !kr
          ? "not in this profile"
          : `${missingText(miss)}${p99} ms (repeats ${range(
              (kr?.repeats ?? []).map((z) => z.latency.p99Ms),
              3,
            )}; max of all repeats ${kr?.latency.maxMs ?? "–"} ms; baseline ${br?.latency.p99Ms ?? "–"}, ${range(
              (br?.repeats ?? []).map((z) => z.latency.p99Ms),
              3,
            )})`,
      met: planned ? miss.length === 0 && p99 <= t.maxMs : null,
    });
  }

  const kl = lostIn(k, ["connections", "connectionsShared", "fanout", "noisy"]);
  const dl = lostIn(d, ["connections", "fanout"]);
  const bl = lostIn(b, ["connections", "fanout", "noisy"]);
  const lostMissing = [
    ...kl.missing.map((x) => `Kabar ${x}`),
    ...dl.missing.map((x) => `Kabar defaults ${x}`),
  ];
  out.push({
    name: "messages lost, every scenario (tuned and default settings)",
    target: "0",
    measured: `${missingText(lostMissing)}${kl.lost + dl.lost} (tuned ${kl.lost}, defaults ${dl.lost}; baseline ${bl.lost})`,
    met: lostMissing.length === 0 && kl.lost + dl.lost === 0,
  });

  const kf = failedIn(k, "tuned", ["connections", "connectionsShared", "fanout", "churn", "noisy"]);
  const df = failedIn(d, "defaults", ["connections", "fanout"]);
  const bf = failedIn(b, "baseline", ["connections", "fanout", "churn", "noisy"]);
  const failMissing = [...kf.missing, ...df.missing];
  const failed = kf.failed + df.failed;
  out.push({
    name: "failed connections (refused, timed out or closed unexpectedly), every scenario",
    target: "0",
    measured: `${missingText(failMissing)}${failed}${
      kf.parts.length + df.parts.length ? ` (${[...kf.parts, ...df.parts].join(", ")})` : ""
    }; baseline ${bf.failed}`,
    met: failMissing.length === 0 && failed === 0,
  });

  {
    const n = k.noisy;
    const miss: string[] = [];
    if (!n) miss.push("noisy neighbour: not measured");
    else {
      miss.push(...runMissing(n.quiet, st.noisy.repeats, "quiet run"));
      miss.push(...runMissing(n.noisy, st.noisy.repeats, "run beside the flooder"));
      if (n.p99Ratio === null) miss.push("no ratio");
    }
    const x = n?.p99Ratio ?? Number.NaN;
    out.push({
      name: "noisy neighbour: others' p99 vs the quiet run",
      target: `≤ ${TARGETS.noisyP99Ratio}×`,
      measured: `${missingText(miss)}${x}× (${n?.quiet.latency.p99Ms ?? "–"} → ${n?.noisy.latency.p99Ms ?? "–"} ms; baseline ${b.noisy?.p99Ratio ?? "–"}×)`,
      met: miss.length === 0 && x <= TARGETS.noisyP99Ratio,
    });
  }

  {
    const run = defaultsRun(d);
    const miss = [
      ...connMissing(d.connections, connReps, "connections"),
      ...runMissing(run, fanReps, "fan-out"),
    ];
    const refused = run?.rateLimited ?? 0;
    const errors = (run?.errorFrames ?? 0) - refused;
    out.push({
      name: "default settings row: frames refused by the default rate limit, other error frames",
      target: "0 (the load stays under 100 frames per 60 s per user)",
      measured: `${missingText(miss)}${refused} refused, ${errors} other errors, of ${run?.sent ?? 0} messages sent (${run?.perSenderMsgPerSec ?? "–"} per sender per second); bot answers ${run?.botFrames ?? 0}`,
      met: miss.length === 0 && refused === 0 && errors === 0,
    });
  }

  {
    const gcMissed = [
      ...[k, d, b].flatMap((x, i) =>
        [x.connections, x.connectionsShared]
          .filter((c) => c !== undefined && !c.rssAfterGc)
          .map(() => `${["tuned", "defaults", "baseline"][i]} connections`),
      ),
      ...[k, b]
        .filter((x) => x.churn !== undefined && !x.churn.rssAfterGc)
        .map((x) => (x === k ? "tuned churn" : "baseline churn")),
    ];
    const failures = r.failures.map((f) => `${f.phase}: ${f.error}`);
    out.push({
      name: "every phase ran, every memory reading followed a forced GC",
      target: "no harness failure, every GC hook answered",
      measured:
        failures.length + gcMissed.length === 0
          ? "yes"
          : [
              failures.length ? `${failures.length} failed: ${failures.join("; ")}` : "",
              gcMissed.length ? `GC hook unanswered: ${gcMissed.join(", ")}` : "",
            ]
              .filter(Boolean)
              .join(". "),
      met: failures.length === 0 && gcMissed.length === 0,
    });
  }
  return out;
}

/** The cluster benchmarks' targets (cluster issue, item 11; bench/cluster.ts, bench/c100k.ts). */
export const CLUSTER_TARGETS = {
  /** Fan-out, closed loop: 2 nodes (their CPU and redis-server's) ÷ 1 node, per CPU-second. */
  deliveriesPerCpuSecRatio: 0.75,
  /** p99 of 2 nodes at this rate, judged when bare Bun's p99 in the same run is within its limit. */
  p99: { deliveriesPerSec: 20_000, maxMs: 3, baselineMaxMs: 2 },
  /** The fan-out shape the targets are set for (the single-node scenario's). */
  fanoutShape: { rooms: 10, members: 100 },
  /** Concurrent authenticated connections on one machine, and one broadcast reaching them all. */
  connections: 100_000,
} as const;
