// The cluster fan-out run (bench/cluster.ts) checked against its targets (CLUSTER_TARGETS in
// bench/targets.ts), as Markdown and as an SVG chart. Missing data never passes: a side or
// repeat that did not run, a window without latency samples, no CPU reading for one of the server
// processes, sockets not split over the two nodes — each is named and its target is not met.
import type { ClusterResult, ClusterSideResult, KabarSource } from "./cluster.ts";
import { type ClusterSideKey, SIDE_KEYS, SIDE_LABELS } from "./cluster-profiles.ts";
import type { FanoutResult } from "./commands.ts";
import type { FanoutRun } from "./paired.ts";
import type { Machine } from "./proc.ts";
import { fmt } from "./report.ts";
import type { TargetCheck } from "./result.ts";
import { CLUSTER_TARGETS, range, ratio } from "./targets.ts";

type Sides = ClusterResult["sides"];
const KABAR_SIDES: ClusterSideKey[] = ["oneNode", "oneNodeRedis", "twoNodes"];

/** The run of `side` in `mode` (and at `rate`). */
export function sideRun(
  sides: Sides,
  side: ClusterSideKey,
  mode: "closed" | "rate",
  rate: number | null = null,
): FanoutRun | undefined {
  return sides[side]?.runs.find(
    (y) => y.mode === mode && (mode === "closed" || y.targetDeliveriesPerSec === rate),
  );
}

/** What is missing from one side's run (empty: complete). */
function runMissing(
  s: ClusterSideResult | undefined,
  run: FanoutRun | undefined,
  planned: number,
  label: string,
): string[] {
  if (!s || !run) return [`${label}: not measured`];
  const out: string[] = [];
  if (run.repeats.length < planned)
    out.push(`${label}: ${run.repeats.length} of ${planned} repeats`);
  if (run.repeatsWithoutSamples > 0)
    out.push(`${label}: ${run.repeatsWithoutSamples} repeat(s) without latency samples`);
  if (run.latency.count === 0) out.push(`${label}: no latency samples`);
  if (run.windowDeliveries === 0) out.push(`${label}: no deliveries in the window`);
  // A process's reading can be 0 in a short window (/proc counts 10 ms ticks); a missing one, or
  // no server CPU at all, is missing data.
  const bad = run.repeats.filter(
    (y) => y.serverCpuSec <= 0 || (y.pidCpuSec ?? []).length !== s.processes.length,
  ).length;
  if (bad > 0) out.push(`${label}: ${bad} repeat(s) without a CPU reading of every server process`);
  return out;
}

const missingText = (m: string[]) => (m.length ? `MISSING: ${m.join("; ")}. ` : "");

const perCpu = (y: FanoutResult) => (y.serverCpuSec > 0 ? y.windowDeliveries / y.serverCpuSec : 0);

/** Each server process's CPU as cores over the window, summed over the repeats. */
export function cpuSplit(s: ClusterSideResult | undefined, run: FanoutRun | undefined): number[] {
  if (!s || !run) return [];
  const ms = run.repeats.reduce((a, y) => a + y.windowMs, 0);
  return s.processes.map((_, k) => {
    const sec = run.repeats.reduce((a, y) => a + (y.pidCpuSec?.[k] ?? 0), 0);
    return ms > 0 ? (sec * 1000) / ms : 0;
  });
}

export function checkClusterTargets(
  r: Pick<ClusterResult, "settings" | "sides" | "failures">,
): TargetCheck[] {
  const st = r.settings;
  const sides = r.sides;
  const planned = st.repeats;
  const shape = CLUSTER_TARGETS.fanoutShape;
  const applies = st.rooms === shape.rooms && st.members === shape.members;
  const out: TargetCheck[] = [];

  {
    const two = sideRun(sides, "twoNodes", "closed");
    const one = sideRun(sides, "oneNode", "closed");
    const miss = [
      ...runMissing(sides.twoNodes, two, planned, "2 nodes"),
      ...runMissing(sides.oneNode, one, planned, "1 node"),
    ];
    const x = two && one ? ratio(two.deliveriesPerCpuSec, one.deliveriesPerCpuSec) : Number.NaN;
    const split = cpuSplit(sides.twoNodes, two)
      .map((c, k) => `${sides.twoNodes?.processes[k]} ${c.toFixed(2)}`)
      .join(", ");
    const pairs = Math.min(two?.repeats.length ?? 0, one?.repeats.length ?? 0);
    const paired = Array.from({ length: pairs }, (_, i) =>
      ratio(perCpu(two?.repeats[i] as FanoutResult), perCpu(one?.repeats[i] as FanoutResult)),
    );
    const redis1 = sideRun(sides, "oneNodeRedis", "closed");
    const bare = sideRun(sides, "baseline", "closed");
    out.push({
      name: `fan-out deliveries per CPU-second, 2 nodes (both nodes' CPU and redis-server's) vs 1 node, ${st.rooms} rooms × ${st.members}, closed loop`,
      target: `≥ ${CLUSTER_TARGETS.deliveriesPerCpuSecRatio}× one node at ${shape.rooms} × ${shape.members}`,
      measured: `${missingText(miss)}${x}× (2 nodes ${two?.deliveriesPerCpuSec ?? "–"}, repeats ${range(
        (two?.repeats ?? []).map(perCpu),
        0,
      )}, cores ${split || "–"}; 1 node ${one?.deliveriesPerCpuSec ?? "–"}, ${range(
        (one?.repeats ?? []).map(perCpu),
        0,
      )}; paired repeats ${range(paired)}×; 1 node + Redis ${redis1?.deliveriesPerCpuSec ?? "–"}; bare Bun ${bare?.deliveriesPerCpuSec ?? "–"})`,
      met: applies ? miss.length === 0 && x >= CLUSTER_TARGETS.deliveriesPerCpuSecRatio : null,
    });
  }

  {
    const t = CLUSTER_TARGETS.p99;
    const inProfile = applies && st.rates.some((x) => x.deliveriesPerSec === t.deliveriesPerSec);
    const two = sideRun(sides, "twoNodes", "rate", t.deliveriesPerSec);
    const bare = sideRun(sides, "baseline", "rate", t.deliveriesPerSec);
    const one = sideRun(sides, "oneNode", "rate", t.deliveriesPerSec);
    const miss = inProfile
      ? [
          ...runMissing(sides.twoNodes, two, planned, "2 nodes"),
          ...runMissing(sides.baseline, bare, planned, "bare Bun"),
        ]
      : [];
    const p99 = two?.latency.p99Ms ?? Number.NaN;
    const bp99 = bare?.latency.p99Ms ?? Number.NaN;
    const judged = bp99 <= t.baselineMaxMs;
    const reps = (y: FanoutRun | undefined) =>
      range(
        (y?.repeats ?? []).map((z) => z.latency.p99Ms),
        3,
      );
    const text = `${p99} ms (repeats ${reps(two)}; max of all repeats ${two?.latency.maxMs ?? "–"} ms); bare Bun ${bp99} ms (${reps(bare)}); 1 node ${one?.latency.p99Ms ?? "–"} ms (${reps(one)})`;
    out.push({
      name: `p99 latency at ~${t.deliveriesPerSec / 1000}k deliveries/s, 2 nodes`,
      target: `≤ ${t.maxMs} ms when bare Bun's p99 in the same run is ≤ ${t.baselineMaxMs} ms`,
      measured: !inProfile
        ? "not in this profile"
        : miss.length > 0
          ? `${missingText(miss)}${text}`
          : judged
            ? text
            : `NOT JUDGED: bare Bun's p99 was ${bp99} ms > ${t.baselineMaxMs} ms (a busy machine). ${text}`,
      met: !inProfile ? null : miss.length > 0 ? false : judged ? p99 <= t.maxMs : null,
    });
  }

  {
    const missing = KABAR_SIDES.filter((k) => !sides[k]).map((k) => SIDE_LABELS[k]);
    let lost = 0;
    let dup = 0;
    const parts: string[] = [];
    for (const k of KABAR_SIDES) {
      const runs = sides[k]?.runs ?? [];
      const l = runs.reduce((a, y) => a + y.lost, 0);
      const d = runs.reduce((a, y) => a + y.duplicates, 0);
      lost += l;
      dup += d;
      parts.push(`${SIDE_LABELS[k]} ${l}${d ? ` (+${d} twice)` : ""}`);
    }
    const bare = (sides.baseline?.runs ?? []).reduce((a, y) => a + y.lost, 0);
    out.push({
      name: "messages lost or delivered twice, every Kabar side and mode",
      target: "0",
      measured: `${missingText(missing)}${lost} lost, ${dup} twice (${parts.join(", ")}; bare Bun ${bare} lost)`,
      met: missing.length === 0 && lost === 0 && dup === 0,
    });
  }

  {
    const missing = SIDE_KEYS.filter((k) => !sides[k]).map((k) => SIDE_LABELS[k]);
    const closes = SIDE_KEYS.map((k) => ({
      k,
      n: (sides[k]?.runs ?? []).reduce((a, y) => a + y.unexpectedCloses, 0),
    }));
    const errors = KABAR_SIDES.reduce(
      (a, k) => a + (sides[k]?.runs ?? []).reduce((b, y) => b + y.errorFrames, 0),
      0,
    );
    const total = closes.reduce((a, c) => a + c.n, 0);
    out.push({
      name: "sockets closed unexpectedly, error frames (every side and mode)",
      target: "0",
      measured: `${missingText(missing)}${total} closed${
        total
          ? ` (${closes
              .filter((c) => c.n > 0)
              .map((c) => `${SIDE_LABELS[c.k]} ${c.n}`)
              .join(", ")})`
          : ""
      }, ${errors} error frames`,
      met: missing.length === 0 && total === 0 && errors === 0,
    });
  }

  {
    const s = sides.twoNodes;
    const half = (st.rooms * st.members) / 2;
    const counts = s?.socketsPerNode ?? [];
    const miss: string[] = [];
    if (!s) miss.push("2 nodes: not measured");
    else if (counts.length < planned) miss.push(`2 nodes: ${counts.length} of ${planned} repeats`);
    const even = counts.every((c) => c.length === 2 && c.every((n) => n === half));
    out.push({
      name: "2 nodes: each room's members split over the two nodes",
      target: `${half} sockets on each node (half of every room)`,
      measured: `${missingText(miss)}${counts.map((c) => c.join(" + ")).join("; ") || "–"} sockets per node (per repeat)`,
      met: miss.length === 0 && even,
    });
  }

  out.push({
    name: "every phase ran",
    target: "no harness failure",
    measured:
      r.failures.length === 0
        ? "yes"
        : `${r.failures.length} failed: ${r.failures.map((f) => `${f.phase}: ${f.error}`).join("; ")}`,
    met: r.failures.length === 0,
  });
  return out;
}

// ---------------------------------------------------------------- Markdown

/** The machine, as bench/report.ts `machineLine` words it. */
export function hostLine(m: Machine, pinned: boolean, serverCore: number, clientCore: number) {
  const pin = pinned
    ? `server processes pinned to core ${serverCore}, clients to core ${clientCore} (taskset)`
    : "not pinned";
  return `${m.cores} cores (${m.cpuModel}), ${m.memoryGiB} GiB, Linux ${m.kernel}, Bun ${m.bun}, open files ${m.openFilesLimit ?? "?"} per process; ${pin}`;
}

/** Which Kabar the figures are of. */
export function sourceLine(k: KabarSource): string {
  const where = k.dir === "this checkout" ? "this checkout" : `a tree exported from git (${k.dir})`;
  return `Kabar measured: ${where} at commit ${k.commit.slice(0, 12)}${k.dirty ? ", plus uncommitted changes in src/" : ""}.`;
}

const MET = (m: boolean | null) => (m === null ? "n/a" : m ? "yes" : "**no**");

type Get = (y: FanoutResult) => number;
const per = (sec: number, ms: number) => (ms > 0 ? (sec * 1000) / ms : 0);

const METRICS: [string, Get, "combined" | "median" | "sum" | "max"][] = [
  ["delivered / s", (y) => y.deliveriesPerSec, "median"],
  ["deliveries per server-CPU-second (every server process)", perCpu, "combined"],
  [
    "server CPU per delivery (µs)",
    (y) => (y.windowDeliveries ? (y.serverCpuSec * 1e6) / y.windowDeliveries : 0),
    "combined",
  ],
  ["server processes busy (cores)", (y) => per(y.serverCpuSec, y.windowMs), "combined"],
  ["latency p50 (ms)", (y) => y.latency.p50Ms, "median"],
  ["latency p95 (ms)", (y) => y.latency.p95Ms, "median"],
  ["latency p99 (ms)", (y) => y.latency.p99Ms, "median"],
  ["latency max, all repeats (ms)", (y) => y.latency.maxMs, "max"],
  ["latency samples", (y) => y.latency.count, "sum"],
  ["lost", (y) => y.lost, "sum"],
  ["unexpected closes", (y) => y.unexpectedCloses, "sum"],
  ["client CPU (cores)", (y) => per(y.clientCpuSec, y.windowMs), "median"],
  ["other processes' CPU (cores)", (y) => per(y.otherCpuSec, y.windowMs), "median"],
  ["hypervisor steal, whole VM (cores)", (y) => per(y.stealSec, y.windowMs), "median"],
];

/** The headline of `get` over a run's repeats, as `METRICS` says, and its min–max. */
function cell(run: FanoutRun | undefined, get: Get, how: (typeof METRICS)[number][2]): string {
  if (!run || run.repeats.length === 0) return "–";
  const vals = run.repeats.map(get);
  let v: number;
  if (how === "sum") v = vals.reduce((a, x) => a + x, 0);
  else if (how === "max") v = Math.max(...vals);
  else if (how === "median") {
    const s = [...vals].sort((a, b) => a - b);
    const m = Math.floor(s.length / 2);
    v = s.length % 2 ? (s[m] ?? 0) : ((s[m - 1] ?? 0) + (s[m] ?? 0)) / 2;
  } else v = get(run); // totals over the repeats (bench/paired.ts `combine` sums them)
  const lo = Math.min(...vals);
  const hi = Math.max(...vals);
  const spread =
    vals.length > 1 && how !== "sum" && fmt(lo) !== fmt(hi) ? ` (${fmt(lo)}–${fmt(hi)})` : "";
  return `${fmt(v)}${spread}`;
}

function headline(run: FanoutRun | undefined, get: Get, how: (typeof METRICS)[number][2]): number {
  const c = cell(run, get, how).split(" ")[0] ?? "";
  return Number(c.replaceAll(",", ""));
}

export function clusterMarkdown(r: ClusterResult, chart: string): string {
  const st = r.settings;
  const sides = r.sides;
  const modes = [
    { label: "max (closed loop)", mode: "closed" as const, rate: null as number | null },
    ...st.rates.map((x) => ({ label: x.label, mode: "rate" as const, rate: x.deliveriesPerSec })),
  ];
  const busy = r.background.filter((w) => !w.quiet);
  const waited = r.background.reduce((a, w) => a + w.waitedMs, 0) / 1000;
  const lines = [
    `# Kabar cluster fan-out: ${r.profile} run, ${r.startedAt}`,
    "",
    `Machine: ${hostLine(r.machine, r.pinned, r.serverCore, r.clientCore)}. Every server process of a side (its nodes and its redis-server) runs on the server core; the load client on the other.`,
    "",
    `Load average (1, 5, 15 min): ${r.loadAvg.start.join(", ")} at the start, ${r.loadAvg.end.join(", ")} at the end; the run took ${r.durationSec} s. ${sourceLine(r.kabar)}`,
    r.background.length === 0
      ? "Background load was not checked in this profile."
      : `Before each measured window the harness waited for other processes to go quiet (< 0.15 cores): ${waited.toFixed(1)} s waited; ${busy.length} of ${r.background.length} windows started on a busy machine${busy.length ? `: ${busy.map((w) => `${w.phase} (${w.otherCores} cores)`).join(", ")}` : ""}. A window during which other processes used ≥ 0.15 cores on average was run again (at most ${r.settings.retries} times): ${r.disturbed.length === 0 ? "none was" : r.disturbed.map((d) => `${d.phase} (${d.otherCores} cores${d.retried ? ", run again" : ", kept: no retry left"})`).join(", ")}.`,
    "",
    `Shape: ${st.rooms} rooms × ${st.members} members on ${st.users} users (REST-made, sockets spread over them), ${st.senders} senders per room, closed loop with ${st.window} messages in flight per sender (${st.closedMs / 1000} s window), then fixed rates ${st.rates.map((x) => x.label).join(", ")} (${st.rateMs / 1000} s windows, ${st.warmupMs / 1000} s warm-up each). ${st.repeats} repeats per side in rotation, each on freshly started servers (and a fresh redis-server) with a fresh load client process. With 2 nodes, socket i connects to node floor(i / ${st.rooms}) mod 2 and joins room i mod ${st.rooms}: every room has ${st.members / 2} members on each node and one sender on each (${st.senders} senders). Server CPU is read from /proc/<pid>/stat of every server process of the side (nodes and redis-server) at the window's edges. Medians of the repeats with min–max; CPU figures are totals over the repeats (total deliveries ÷ total CPU); latency max is the max of every repeat; counts are sums.`,
    "",
    "## Settings of every side",
    "",
    "| side | server processes | program | environment |",
    "| --- | --- | --- | --- |",
    ...r.servers.map(
      (s) =>
        `| ${s.label} | ${s.processes.join(", ")} | \`${s.program}\` | ${Object.entries(s.env)
          .map(([k, v]) => `\`${k}=${v}\``)
          .join(" ")} |`,
    ),
    "",
  ];
  if (r.failures.length > 0)
    lines.push(
      "## Phases that failed (their figures are missing; the targets count them as misses)",
      "",
      ...r.failures.map((f) => `- ${f.phase}: ${f.error}`),
      "",
    );
  lines.push(
    "## Targets (cluster issue, item 11)",
    "",
    "| target | goal | measured | met |",
    "| --- | --- | --- | --- |",
    ...r.targets.map((t) => `| ${t.name} | ${t.target} | ${t.measured} | ${MET(t.met)} |`),
    "",
    "## Figures",
    "",
    `| mode | metric | ${SIDE_KEYS.map((k) => SIDE_LABELS[k]).join(" | ")} | 2 nodes ÷ 1 node |`,
    `| --- | --- | ${SIDE_KEYS.map(() => "---:").join(" | ")} | ---: |`,
  );
  for (const m of modes) {
    const runs = SIDE_KEYS.map((k) => sideRun(sides, k, m.mode, m.rate));
    METRICS.forEach(([metric, get, how], i) => {
      const two = headline(runs[3], get, how);
      const one = headline(runs[1], get, how);
      const x = Number.isFinite(two) && Number.isFinite(one) && one !== 0 && how !== "sum";
      lines.push(
        `| ${i === 0 ? m.label : ""} | ${metric} | ${runs.map((y) => cell(y, get, how)).join(" | ")} | ${x ? `${ratio(two, one)}×` : ""} |`,
      );
    });
    const split = SIDE_KEYS.map((k, j) => {
      const c = cpuSplit(sides[k], runs[j]);
      return c.length
        ? c.map((v, n) => `${sides[k]?.processes[n]} ${v.toFixed(2)}`).join(", ")
        : "–";
    });
    lines.push(`| | server CPU by process (cores) | ${split.join(" | ")} | |`);
  }
  lines.push("", `![Kabar cluster fan-out](${chart})`, "");
  return lines.join("\n");
}

// ---------------------------------------------------------------- SVG

const COLORS: Record<ClusterSideKey, string> = {
  baseline: "#a3a3a3",
  oneNode: "#2563eb",
  oneNodeRedis: "#60a5fa",
  twoNodes: "#f59e0b",
};
const INK = "#1f2937";
const MUTED = "#6b7280";
const RED = "#dc2626";
const esc = (s: string) => s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
const n1 = (x: number) => (Math.round(x * 10) / 10).toString();
const txt = (x: number, y: number, s: string, a = "") =>
  `<text x="${n1(x)}" y="${n1(y)}" ${a}>${esc(s)}</text>`;
const box = (x: number, y: number, w: number, h: number, fill: string) =>
  `<rect x="${n1(x)}" y="${n1(y)}" width="${n1(Math.max(0, w))}" height="${n1(Math.max(0, h))}" fill="${fill}" rx="2"/>`;
const ln = (x1: number, y1: number, x2: number, y2: number, a: string) =>
  `<line x1="${n1(x1)}" y1="${n1(y1)}" x2="${n1(x2)}" y2="${n1(y2)}" ${a}/>`;
const short = (v: number) => (v >= 10 ? v.toFixed(0) : v >= 1 ? v.toFixed(1) : v.toFixed(2));
const HALO = `stroke="#ffffff" stroke-width="3" paint-order="stroke"`;

/** Left: p50 / p99 / max at each fixed rate, per side, log scale; the p99 target dashed. */
function latencyPanel(r: ClusterResult, x0: number, y0: number, w: number, h: number): string[] {
  const out: string[] = [
    txt(
      x0,
      y0 - 14,
      `Fan-out latency at fixed rates, ms (log scale)`,
      `font-size="15" font-weight="600" fill="${INK}"`,
    ),
  ];
  const rates = r.settings.rates;
  const P: [string, (y: FanoutRun) => number][] = [
    ["p50", (y) => y.latency.p50Ms],
    ["p99", (y) => y.latency.p99Ms],
    ["max", (y) => y.latency.maxMs],
  ];
  const vals = rates
    .flatMap((rt) =>
      SIDE_KEYS.flatMap((k) => {
        const y = sideRun(r.sides, k, "rate", rt.deliveriesPerSec);
        return y ? P.map(([, g]) => g(y)) : [];
      }),
    )
    .filter((v) => v > 0);
  const lo = 10 ** Math.floor(Math.log10(Math.min(...vals, 0.1)));
  const hi = 10 ** Math.ceil(Math.log10(Math.max(...vals, 4)));
  const top = y0 + 10;
  const bottom = y0 + h - 50;
  const y = (v: number) =>
    bottom -
    ((Math.log10(Math.max(v, lo)) - Math.log10(lo)) / (Math.log10(hi) - Math.log10(lo))) *
      (bottom - top);
  for (let v = lo; v <= hi * 1.001; v *= 10) {
    out.push(ln(x0 + 40, y(v), x0 + w, y(v), `stroke="#e5e7eb"`));
    out.push(
      txt(
        x0 + 34,
        y(v) + 4,
        v >= 1 ? String(v) : String(Number(v.toPrecision(1))),
        `font-size="11" fill="${MUTED}" text-anchor="end"`,
      ),
    );
  }
  const groups = rates.length * P.length;
  const slot = (w - 50) / Math.max(1, groups);
  const bw = Math.min(18, (slot * 0.8) / SIDE_KEYS.length);
  const t = CLUSTER_TARGETS.p99;
  rates.forEach((rt, ri) => {
    P.forEach(([name, get], pi) => {
      const gx = x0 + 50 + (ri * P.length + pi) * slot;
      const start = gx + (slot - bw * SIDE_KEYS.length) / 2;
      SIDE_KEYS.forEach((k, si) => {
        const run = sideRun(r.sides, k, "rate", rt.deliveriesPerSec);
        const bx = start + si * bw;
        if (!run) {
          out.push(
            txt(bx + bw / 2, bottom - 4, "–", `font-size="9" fill="${MUTED}" text-anchor="middle"`),
          );
          return;
        }
        const v = get(run);
        out.push(box(bx + 0.5, y(v), bw - 1, bottom - y(v), COLORS[k]));
        out.push(
          txt(
            bx + bw / 2,
            y(v) - (si % 2 ? 13 : 4),
            short(v),
            `font-size="8.5" fill="${INK}" text-anchor="middle" ${HALO}`,
          ),
        );
      });
      out.push(
        txt(gx + slot / 2, bottom + 16, name, `font-size="12" fill="${INK}" text-anchor="middle"`),
      );
      if (name === "p99" && rt.deliveriesPerSec === t.deliveriesPerSec) {
        out.push(
          ln(
            gx + 2,
            y(t.maxMs),
            gx + slot - 2,
            y(t.maxMs),
            `stroke="${RED}" stroke-width="1.5" stroke-dasharray="4 3"`,
          ),
        );
        out.push(
          txt(
            gx + slot / 2,
            y(t.maxMs) + 12,
            `2 nodes ≤ ${t.maxMs}`,
            `font-size="9.5" font-weight="600" fill="${RED}" text-anchor="middle" ${HALO}`,
          ),
        );
      }
    });
    const left = x0 + 50 + ri * P.length * slot;
    out.push(
      ln(left + 4, bottom + 24, left + P.length * slot - 4, bottom + 24, `stroke="${MUTED}"`),
    );
    out.push(
      txt(
        left + (P.length * slot) / 2,
        bottom + 39,
        `at ${rt.label} deliveries`,
        `font-size="12" font-weight="600" fill="${INK}" text-anchor="middle"`,
      ),
    );
  });
  return out;
}

/** Right: deliveries per CPU-second (closed loop) and CPU per delivery at the first rate, per side. */
function costPanel(r: ClusterResult, x0: number, y0: number, w: number): string[] {
  const out: string[] = [
    txt(
      x0,
      y0 - 14,
      "Cost: every server process's CPU",
      `font-size="15" font-weight="600" fill="${INK}"`,
    ),
  ];
  const rate = r.settings.rates[0];
  const panels: {
    label: string;
    note: string;
    get: (k: ClusterSideKey) => number | undefined;
    unit: string;
    target: boolean;
  }[] = [
    {
      label: "Deliveries per CPU-second, closed loop",
      note: "nodes + redis-server · higher is better",
      get: (k) => sideRun(r.sides, k, "closed")?.deliveriesPerCpuSec,
      unit: "",
      target: true,
    },
    {
      label: `CPU per delivery at ${rate?.label ?? "?"}`,
      note: "nodes + redis-server · lower is better",
      get: (k) => sideRun(r.sides, k, "rate", rate?.deliveriesPerSec ?? null)?.cpuPerDeliveryUs,
      unit: " µs",
      target: false,
    },
  ];
  let top = y0 + 8;
  for (const p of panels) {
    out.push(txt(x0, top, p.label, `font-size="12.5" font-weight="600" fill="${INK}"`));
    out.push(txt(x0, top + 13, p.note, `font-size="10" fill="${MUTED}"`));
    const vals = SIDE_KEYS.map((k) => p.get(k));
    const scale = Math.max(...vals.map((v) => v ?? 0), 1e-9);
    const barMax = w - 150;
    const one = p.get("oneNode");
    // The target line goes under the bars' labels.
    const under = out.length;
    SIDE_KEYS.forEach((k, j) => {
      const v = vals[j];
      const by = top + 22 + j * 22;
      const bw = v === undefined ? 0 : (v / scale) * barMax;
      out.push(box(x0, by, bw, 17, COLORS[k]));
      out.push(
        txt(
          x0 + bw + 5,
          by + 12.5,
          v === undefined ? "missing" : `${fmt(v)}${p.unit}`,
          `font-size="11" fill="${INK}" ${HALO}`,
        ),
      );
      if (k === "twoNodes" && v !== undefined && one !== undefined && one > 0)
        out.push(
          txt(
            x0 + w,
            by + 12.5,
            `${ratio(v, one)}× 1 node`,
            `font-size="12" font-weight="600" fill="${INK}" text-anchor="end"`,
          ),
        );
    });
    if (p.target && one !== undefined) {
      const tx = x0 + ((one * CLUSTER_TARGETS.deliveriesPerCpuSecRatio) / scale) * barMax;
      const ty = top + 22 + 3 * 22;
      out.splice(
        under,
        0,
        ln(tx, ty - 3, tx, ty + 20, `stroke="${RED}" stroke-width="1.5" stroke-dasharray="3 2"`),
      );
      out.push(
        txt(
          x0 + w,
          ty + 30,
          `target ≥ ${CLUSTER_TARGETS.deliveriesPerCpuSecRatio}× 1 node`,
          `font-size="9.5" font-weight="600" fill="${RED}" text-anchor="end"`,
        ),
      );
    }
    top += 150;
  }
  return out;
}

export function clusterSvg(r: ClusterResult): string {
  const W = 1000;
  const H = 560;
  const m = r.machine;
  const sub = `${r.profile} run, ${r.startedAt.slice(0, 16).replace("T", " ")} UTC · ${m.cores} cores ${m.cpuModel}, ${m.memoryGiB} GiB · Bun ${m.bun} · ${r.settings.rooms} rooms × ${r.settings.members} · load avg ${r.loadAvg.start[0]} at start`;
  const legend = SIDE_KEYS.flatMap((k, i) => [
    box(24 + i * 190, 70, 14, 14, COLORS[k]),
    txt(44 + i * 190, 82, SIDE_LABELS[k], `font-size="12.5" fill="${INK}"`),
  ]);
  const met = r.targets.filter((t) => t.met === true).length;
  const judged = r.targets.filter((t) => t.met !== null).length;
  const lost = KABAR_SIDES.reduce(
    (a, k) => a + (r.sides[k]?.runs ?? []).reduce((b, y) => b + y.lost, 0),
    0,
  );
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="system-ui, -apple-system, Segoe UI, Helvetica, Arial, sans-serif">`,
    box(0, 0, W, H, "#ffffff"),
    txt(
      24,
      32,
      "Kabar cluster: fan-out over 2 nodes + Redis vs 1 node",
      `font-size="20" font-weight="700" fill="${INK}"`,
    ),
    txt(24, 54, sub, `font-size="12" fill="${MUTED}"`),
    ...legend,
    ...latencyPanel(r, 24, 130, 560, 370),
    ...costPanel(r, 630, 130, 346),
    txt(
      24,
      H - 16,
      `Medians of ${r.settings.repeats} repeats per side (max: of all repeats); all server processes of a side on one core. Lost (Kabar): ${lost}. Targets met: ${met} of ${judged} judged.`,
      `font-size="11.5" fill="${INK}"`,
    ),
    "</svg>",
    "",
  ].join("\n");
}
