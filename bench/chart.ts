// The SVG chart of one run, written by hand (no dependencies): fan-out latency percentiles at the
// fixed rates (log scale; p99 targets dashed, read from bench/targets.ts) and throughput/cost
// bars, Kabar next to the baseline, with each bar's target from bench/targets.ts where it has one.

import type { FanoutRun } from "./paired.ts";
import { fmt } from "./report.ts";
import type { BenchResult, ServerResults } from "./result.ts";
import {
  clientBoundNote,
  defaultsRun,
  p99Target,
  ratio,
  sharedRun,
  TARGETS,
  totalLost,
} from "./targets.ts";

const KABAR = "#2563eb";
const BASE = "#a3a3a3";
const INK = "#1f2937";
const MUTED = "#6b7280";
const W = 1000;
const H = 640;

/** Bar labels: two significant digits below 10, whole numbers above 100. */
const short = (v: number) => (v >= 100 ? v.toFixed(0) : v >= 10 ? v.toFixed(1) : v.toFixed(2));
const esc = (s: string) => s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
const num = (x: number) => (Math.round(x * 10) / 10).toString();

function text(x: number, y: number, s: string, attrs = ""): string {
  return `<text x="${num(x)}" y="${num(y)}" ${attrs}>${esc(s)}</text>`;
}
/** Text with a white halo, readable over bars and grid lines. */
const HALO = `stroke="#ffffff" stroke-width="3" paint-order="stroke"`;
const MID = `text-anchor="middle"`;
const TARGET = `font-size="9.5" font-weight="600" fill="#dc2626"`;
function rect(x: number, y: number, w: number, h: number, fill: string): string {
  return `<rect x="${num(x)}" y="${num(y)}" width="${num(Math.max(0, w))}" height="${num(Math.max(0, h))}" fill="${fill}" rx="2"/>`;
}
function line(x1: number, y1: number, x2: number, y2: number, attrs: string): string {
  return `<line x1="${num(x1)}" y1="${num(y1)}" x2="${num(x2)}" y2="${num(y2)}" ${attrs}/>`;
}

const P = [
  ["p50", (r: FanoutRun) => r.latency.p50Ms],
  ["p95", (r: FanoutRun) => r.latency.p95Ms],
  ["p99", (r: FanoutRun) => r.latency.p99Ms],
  ["max", (r: FanoutRun) => r.latency.maxMs],
] as const;

/** Left panel: latency percentiles per fixed rate, log scale. */
function latencyPanel(r: BenchResult, x0: number, y0: number, w: number, h: number): string[] {
  const out: string[] = [];
  const shared = (r.kabar.fanout?.runs ?? [])
    .filter((k) => k.mode === "rate" && k.load === "shared users")
    .map((k) => ({ k, b: sharedRun(r.baseline, "rate", k.targetDeliveriesPerSec), name: k.label }));
  const dk = defaultsRun(r.kabarDefaults);
  const runs = [
    ...shared,
    ...(dk
      ? [{ k: dk, b: defaultsRun(r.baseline), name: `${dk.label.split(",")[0]}, defaults` }]
      : []),
  ].filter((p): p is { k: FanoutRun; b: FanoutRun; name: string } => p.b !== undefined);
  const f = r.kabar.fanout ?? r.baseline.fanout;
  const shape = TARGETS.fanoutShape;
  const targetsApply = f !== undefined && f.rooms === shape.rooms && f.members === shape.members;
  out.push(
    text(
      x0,
      y0 - 14,
      `Fan-out latency, ms (log scale) — ${f?.rooms ?? "?"} rooms × ${f?.members ?? "?"} members`,
      `font-size="15" font-weight="600" fill="${INK}"`,
    ),
  );
  const values = runs
    .flatMap(({ k, b }) => P.flatMap(([, get]) => [get(k), get(b)]))
    .filter((v) => v > 0);
  const lo = 10 ** Math.floor(Math.log10(Math.min(...values, 0.1)));
  const hi = 10 ** Math.ceil(Math.log10(Math.max(...values, 4)));
  const plotTop = y0 + 10;
  const plotBottom = y0 + h - 50;
  const y = (v: number) =>
    plotBottom -
    ((Math.log10(Math.max(v, lo)) - Math.log10(lo)) / (Math.log10(hi) - Math.log10(lo))) *
      (plotBottom - plotTop);
  for (let v = lo; v <= hi * 1.001; v *= 10) {
    out.push(line(x0 + 40, y(v), x0 + w, y(v), `stroke="#e5e7eb"`));
    out.push(
      text(
        x0 + 34,
        y(v) + 4,
        v >= 1 ? String(v) : String(Number(v.toPrecision(1))),
        `font-size="11" fill="${MUTED}" text-anchor="end"`,
      ),
    );
  }
  const groups = runs.length * P.length;
  const slot = (w - 50) / Math.max(1, groups);
  const bw = Math.min(26, slot * 0.36);
  runs.forEach(({ k, b, name: runName }, ri) => {
    P.forEach(([name, get], pi) => {
      const gx = x0 + 50 + (ri * P.length + pi) * slot;
      const cx = gx + slot / 2;
      for (const [side, run, fill] of [
        [-1, k, KABAR],
        [1, b, BASE],
      ] as const) {
        const v = get(run);
        const bx = side < 0 ? cx - bw - 1 : cx + 1;
        out.push(rect(bx, y(v), bw, plotBottom - y(v), fill));
        out.push(
          text(bx + bw / 2, y(v) - 4, short(v), `font-size="9.5" fill="${INK}" ${MID} ${HALO}`),
        );
      }
      out.push(
        text(cx, plotBottom + 16, name, `font-size="12" fill="${INK}" text-anchor="middle"`),
      );
      const limit = p99Target(k.targetDeliveriesPerSec);
      if (name === "p99" && limit !== null && targetsApply && k.load === "shared users") {
        out.push(
          line(
            gx + 2,
            y(limit),
            gx + slot - 2,
            y(limit),
            `stroke="#dc2626" stroke-width="1.5" stroke-dasharray="4 3"`,
          ),
        );
        out.push(
          text(gx + slot / 2, y(limit) + 12, `target ≤ ${limit}`, `${TARGET} ${MID} ${HALO}`),
        );
      }
    });
    const left = x0 + 50 + ri * P.length * slot;
    out.push(
      line(
        left + 4,
        plotBottom + 24,
        left + P.length * slot - 4,
        plotBottom + 24,
        `stroke="${MUTED}"`,
      ),
    );
    const achieved = `${fmt(k.deliveriesPerSec)} vs ${fmt(b.deliveriesPerSec)} delivered/s`;
    out.push(
      text(
        left + (P.length * slot) / 2,
        plotBottom + 39,
        `at ${runName}`,
        `font-size="12" font-weight="600" fill="${INK}" text-anchor="middle"`,
      ),
    );
    out.push(
      text(
        left + (P.length * slot) / 2,
        plotBottom + 53,
        achieved,
        `font-size="10" fill="${MUTED}" text-anchor="middle"`,
      ),
    );
  });
  return out;
}

interface Bar {
  label: string;
  note: string;
  get: (x: ServerResults) => number | undefined;
  unit: string;
  /** The target, as text next to the ratio (from bench/targets.ts), or "". */
  target: string;
  /** The Kabar side, when it is not `r.kabar`. */
  kabar?: (r: BenchResult) => ServerResults;
}

/** Right panel: paired horizontal bars, each pair scaled to its larger value. */
function throughputPanel(r: BenchResult, x0: number, y0: number, w: number): string[] {
  const cores = [r.kabar, r.baseline].flatMap((x) =>
    (x.connections?.repeats ?? []).map((y) => y.serverCores),
  );
  const bound = clientBoundNote(cores) ? "client-bound (server core not saturated)" : "";
  const bars: Bar[] = [
    {
      label: "Deliveries per server-CPU-second",
      note: "fan-out, closed loop · higher is better",
      get: (x) => sharedRun(x, "closed")?.deliveriesPerCpuSec,
      unit: "",
      target: `target ≥ ${TARGETS.deliveriesPerCpuSecRatio}×`,
    },
    {
      label: "Connections opened / s, one socket per user",
      note: bound
        ? `higher is better · ${bound}`
        : "connect + auth + welcome + join · higher is better",
      get: (x) => x.connections?.connPerSec,
      unit: "",
      target: `target ≥ ${TARGETS.connPerSecRatio}×`,
    },
    {
      label: "Server CPU per connection, one socket per user",
      note: "lower is better",
      get: (x) => x.connections?.cpuPerConnUs,
      unit: " µs",
      target: `target ≤ ${TARGETS.cpuPerConnUs} µs`,
    },
    {
      label: "Server RSS per connection, one socket per user",
      note: "lower is better",
      get: (x) => x.connections?.rssPerConnKiB,
      unit: " KiB",
      target: `target ≤ ${TARGETS.rssPerConnKiB} KiB`,
    },
    {
      label: "Server CPU per connection, Kabar on default settings",
      note: "log info, bot on, default limits · lower is better",
      get: (x) => x.connections?.cpuPerConnUs,
      unit: " µs",
      target: "",
      kabar: (res) => res.kabarDefaults,
    },
    {
      label: "Churn operations / s",
      note: "connect … disconnect · higher is better",
      get: (x) => x.churn?.opsPerSec,
      unit: "",
      target: "",
    },
  ];
  const out = [
    text(x0, y0 - 14, "Throughput and cost", `font-size="15" font-weight="600" fill="${INK}"`),
    text(x0 + w, y0 - 14, "Kabar ÷ baseline", `font-size="10.5" fill="${MUTED}" text-anchor="end"`),
  ];
  const barMax = w - 130;
  bars.forEach((bar, i) => {
    const top = y0 + 8 + i * 74;
    const k = bar.get(bar.kabar ? bar.kabar(r) : r.kabar);
    const b = bar.get(r.baseline);
    const kv = k !== undefined && Number.isFinite(k) ? k : 0;
    const bv = b !== undefined && Number.isFinite(b) ? b : 0;
    const scale = Math.max(kv, bv, 1e-9);
    out.push(text(x0, top, bar.label, `font-size="12.5" font-weight="600" fill="${INK}"`));
    out.push(text(x0, top + 13, bar.note, `font-size="10" fill="${MUTED}"`));
    for (const [j, v, fill] of [
      [0, k, KABAR],
      [1, b, BASE],
    ] as const) {
      const by = top + 20 + j * 20;
      const bw = v === undefined ? 0 : (v / scale) * barMax;
      out.push(rect(x0, by, bw, 16, fill));
      const label = v === undefined ? "missing" : `${fmt(v)}${bar.unit}`;
      out.push(text(x0 + bw + 5, by + 12, label, `font-size="11" fill="${INK}"`));
    }
    out.push(
      text(
        x0 + w,
        top + 33,
        k === undefined || b === undefined ? "–" : `${ratio(k, b)}×`,
        `font-size="14" font-weight="600" fill="${INK}" text-anchor="end"`,
      ),
    );
    if (bar.target) out.push(text(x0 + w, top + 48, bar.target, `${TARGET} text-anchor="end"`));
  });
  return out;
}

/** How much the hypervisor took during the fixed-rate runs: the latency bars include it. */
function stealNote(r: BenchResult): string {
  const runs = [...(r.kabar.fanout?.runs ?? []), ...(r.baseline.fanout?.runs ?? [])].filter(
    (x) => x.mode === "rate",
  );
  const ms = runs.reduce((a, x) => a + x.windowMs, 0);
  const steal = runs.reduce((a, x) => a + x.stealSec, 0);
  const st = r.settings;
  const counts = [st.fanout.repeats, st.connections.repeats, st.churn.repeats];
  const reps = counts.every((c) => c === counts[0])
    ? `${counts[0]} alternating repeat${counts[0] === 1 ? "" : "s"}`
    : `alternating repeats (fan-out ${counts[0]}, connections ${counts[1]}, churn ${counts[2]})`;
  return `Bars: median of ${reps} per server (max: of all repeats). Latency includes hypervisor steal (${ms ? ((steal * 1000) / ms).toFixed(2) : "0"} of ${r.machine.cores} cores on average in the fixed-rate runs).`;
}

export function svg(r: BenchResult): string {
  const m = r.machine;
  const pin = r.pinned
    ? `server on core ${r.serverCore}, clients on core ${r.clientCore}`
    : "not pinned";
  const sub = `${r.profile} run, ${r.startedAt.slice(0, 16).replace("T", " ")} UTC · ${m.cores} cores ${m.cpuModel}, ${m.memoryGiB} GiB · Bun ${m.bun} · ${pin}`;
  const parts = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="system-ui, -apple-system, Segoe UI, Helvetica, Arial, sans-serif">`,
    rect(0, 0, W, H, "#ffffff"),
    text(24, 32, "Kabar vs bare Bun baseline", `font-size="20" font-weight="700" fill="${INK}"`),
    text(24, 54, sub, `font-size="12" fill="${MUTED}"`),
    rect(W - 290, 19, 14, 14, KABAR),
    text(W - 270, 31, "Kabar", `font-size="13" fill="${INK}"`),
    rect(W - 210, 19, 14, 14, BASE),
    text(W - 190, 31, "baseline (bare Bun.serve)", `font-size="13" fill="${INK}"`),
    ...latencyPanel(r, 24, 100, 560, 455),
    ...throughputPanel(r, 630, 100, 346),
    text(24, H - 34, stealNote(r), `font-size="11" fill="${MUTED}"`),
    text(
      24,
      H - 16,
      `Lost: Kabar ${totalLost(r.kabar) + totalLost(r.kabarDefaults)}, baseline ${totalLost(r.baseline)}.  Noisy neighbour: others' p99 ${fmt(r.kabar.noisy?.quiet.latency.p99Ms ?? Number.NaN)} → ${fmt(r.kabar.noisy?.noisy.latency.p99Ms ?? Number.NaN)} ms (${r.kabar.noisy?.p99Ratio ?? "–"}×; baseline ${r.baseline.noisy?.p99Ratio ?? "–"}×).  Targets met: ${r.targets.filter((t) => t.met === true).length} of ${r.targets.filter((t) => t.met !== null).length}.`,
      `font-size="11.5" fill="${INK}"`,
    ),
    "</svg>",
    "",
  ];
  return parts.join("\n");
}
