// The SVG chart of one run, written by hand (no dependencies): fan-out latency percentiles at the
// fixed rates (log scale, p99 targets dashed) and throughput/cost bars, Kabar next to the baseline.

import type { FanoutRun } from "./paired.ts";
import { fmt } from "./report.ts";
import type { BenchResult, ServerResults } from "./result.ts";
import { ratio, totalLost } from "./targets.ts";

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
  const runs = r.kabar.fanout.runs
    .map((k, i) => ({ k, b: r.baseline.fanout.runs[i] }))
    .filter((p): p is { k: FanoutRun; b: FanoutRun } => p.k.mode === "rate" && p.b !== undefined);
  const f = r.kabar.fanout;
  out.push(
    text(
      x0,
      y0 - 14,
      `Fan-out latency, ms (log scale) — ${f.rooms} rooms × ${f.members} members`,
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
  runs.forEach(({ k, b }, ri) => {
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
      if (name === "p99") {
        const limit =
          k.targetDeliveriesPerSec === 20_000 ? 2 : k.targetDeliveriesPerSec === 50_000 ? 3 : null;
        if (limit !== null && f.rooms === 10 && f.members === 100) {
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
        `at ${k.label}`,
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
  get: (x: ServerResults) => number;
  unit: string;
}

/** Right panel: paired horizontal bars, each pair scaled to its larger value. */
function throughputPanel(r: BenchResult, x0: number, y0: number, w: number): string[] {
  const closed = (x: ServerResults) => x.fanout.runs.find((run) => run.mode === "closed");
  const bars: Bar[] = [
    {
      label: "Deliveries per server-CPU-second",
      note: "fan-out, closed loop · higher is better",
      get: (x) => closed(x)?.deliveriesPerCpuSec ?? 0,
      unit: "",
    },
    {
      label: "Delivered messages / s",
      note: "closed loop, client-bound · higher is better",
      get: (x) => closed(x)?.deliveriesPerSec ?? 0,
      unit: "",
    },
    {
      label: "Connections opened / s",
      note: "connect + auth + welcome + join · higher is better",
      get: (x) => x.connections.connPerSec,
      unit: "",
    },
    {
      label: "Churn operations / s",
      note: "connect … disconnect · higher is better",
      get: (x) => x.churn.opsPerSec,
      unit: "",
    },
    {
      label: "Server CPU per connection",
      note: "lower is better",
      get: (x) => x.connections.cpuPerConnUs,
      unit: " µs",
    },
    {
      label: "Server RSS per connection",
      note: "lower is better",
      get: (x) => x.connections.rssPerConnKiB,
      unit: " KiB",
    },
  ];
  const out = [
    text(x0, y0 - 14, "Throughput and cost", `font-size="15" font-weight="600" fill="${INK}"`),
    text(x0 + w, y0 - 14, "Kabar ÷ baseline", `font-size="10.5" fill="${MUTED}" text-anchor="end"`),
  ];
  const barMax = w - 130;
  bars.forEach((bar, i) => {
    const top = y0 + 8 + i * 74;
    const k = bar.get(r.kabar);
    const b = bar.get(r.baseline);
    const scale = Math.max(k, b, 1e-9);
    out.push(text(x0, top, bar.label, `font-size="12.5" font-weight="600" fill="${INK}"`));
    out.push(text(x0, top + 13, bar.note, `font-size="10" fill="${MUTED}"`));
    for (const [j, v, fill] of [
      [0, k, KABAR],
      [1, b, BASE],
    ] as const) {
      const by = top + 20 + j * 20;
      const bw = (v / scale) * barMax;
      out.push(rect(x0, by, bw, 16, fill));
      out.push(text(x0 + bw + 5, by + 12, `${fmt(v)}${bar.unit}`, `font-size="11" fill="${INK}"`));
    }
    out.push(
      text(
        x0 + w,
        top + 33,
        `${ratio(k, b)}×`,
        `font-size="14" font-weight="600" fill="${INK}" text-anchor="end"`,
      ),
    );
  });
  return out;
}

/** How much the hypervisor took during the fixed-rate runs: the latency bars include it. */
function stealNote(r: BenchResult): string {
  const runs = [...r.kabar.fanout.runs, ...r.baseline.fanout.runs].filter((x) => x.mode === "rate");
  const ms = runs.reduce((a, x) => a + x.windowMs, 0);
  const steal = runs.reduce((a, x) => a + x.stealSec, 0);
  const st = r.settings;
  const counts = [st.fanout.repeats, st.connections.repeats, st.churn.repeats];
  const reps = counts.every((c) => c === counts[0])
    ? `${counts[0]} alternating repeat${counts[0] === 1 ? "" : "s"}`
    : `alternating repeats (fan-out ${counts[0]}, connections ${counts[1]}, churn ${counts[2]})`;
  return `Bars: median of ${reps} per server. Latency is measured by the client and includes hypervisor steal (${ms ? ((steal * 1000) / ms).toFixed(2) : "0"} of ${r.machine.cores} cores on average during the fixed-rate runs).`;
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
      `Messages lost: Kabar ${totalLost(r.kabar)}, baseline ${totalLost(r.baseline)}.  Noisy neighbour: others' p99 ${fmt(r.kabar.noisy.quiet.latency.p99Ms)} → ${fmt(r.kabar.noisy.noisy.latency.p99Ms)} ms (${r.kabar.noisy.p99Ratio}×; baseline ${r.baseline.noisy.p99Ratio}×).  Right column: Kabar ÷ baseline.`,
      `font-size="11.5" fill="${INK}"`,
    ),
    "</svg>",
    "",
  ];
  return parts.join("\n");
}
