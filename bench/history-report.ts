// The history benchmarks' targets (history issue, item 7), Markdown and chart: the fan-out cost of
// history (bench/history.ts) and the reconnect storm (bench/storm.ts). Missing data never passes:
// a side or repeat that did not run, a window without latency samples or without a CPU reading of
// every server process, sockets not split over the nodes, a storm phase that threw — each is named
// (MISSING) and its target is not met. `met: null` only where the profile does not define the
// target (the tiny smoke runs' shapes).
import type { FanoutResult } from "./commands.ts";
import type { HistoryResult, HistorySideKey, HistorySideResult } from "./history.ts";
import { HISTORY_SIDE_LABELS, HISTORY_SIDES } from "./history.ts";
import type { FanoutRun } from "./paired.ts";
import type { Machine } from "./proc.ts";
import { fmt } from "./report.ts";
import type { TargetCheck } from "./result.ts";
import type { StormResult } from "./storm.ts";
import { range, ratio } from "./targets.ts";

export const HISTORY_TARGETS = {
  /** Deliveries per server-CPU-second with history on ÷ off, closed loop. */
  onOffRatio: 0.8,
  /** The fan-out shape the ratio target is set for. */
  fanoutShape: { rooms: 10, members: 100 },
  /** The storm shape its targets are set for, and the planned load's tolerance. */
  stormShape: { rooms: 10, members: 100, deliveriesPerSec: 5000 },
  stormRateTolerance: 0.1,
} as const;

type Sides = HistoryResult["sides"];

export function historyRun(
  sides: Sides,
  side: HistorySideKey,
  mode: "closed" | "rate",
  rate: number | null = null,
): FanoutRun | undefined {
  return sides[side]?.runs.find(
    (y) => y.mode === mode && (mode === "closed" || y.targetDeliveriesPerSec === rate),
  );
}

const perCpu = (y: FanoutResult) => (y.serverCpuSec > 0 ? y.windowDeliveries / y.serverCpuSec : 0);
const missingText = (m: string[]) => (m.length ? `MISSING: ${m.join("; ")}. ` : "");
/** A ratio with two decimals, "–" when missing. */
const x2 = (x: number) => (Number.isFinite(x) ? x.toFixed(2) : "–");

function runMissing(
  s: HistorySideResult | undefined,
  run: FanoutRun | undefined,
  planned: number,
  label: string,
  members: number,
): string[] {
  if (!s || !run) return [`${label}: not measured`];
  const out: string[] = [];
  if (run.repeats.length < planned)
    out.push(`${label}: ${run.repeats.length} of ${planned} repeats`);
  if (run.repeatsWithoutSamples > 0)
    out.push(`${label}: ${run.repeatsWithoutSamples} repeat(s) without latency samples`);
  if (run.windowDeliveries === 0) out.push(`${label}: no deliveries in the window`);
  const bad = run.repeats.filter(
    (y) =>
      y.serverCpuSec <= 0 ||
      (s.processes.length > 1 && (y.pidCpuSec ?? []).length !== s.processes.length),
  ).length;
  if (bad > 0) out.push(`${label}: ${bad} repeat(s) without a CPU reading of every server process`);
  if (s.processes.length > 1) {
    const nodes = s.processes.length - 1;
    const split = s.socketsPerNode.filter(
      (c) => c.length !== nodes || c.some((x) => x !== members / nodes),
    );
    if (split.length > 0 || s.socketsPerNode.length < planned)
      out.push(
        `${label}: sockets not split ${members / nodes} per node (${JSON.stringify(s.socketsPerNode)})`,
      );
  }
  return out;
}

/** Each server process's CPU as cores over the windows. */
export function historyCpuSplit(
  s: HistorySideResult | undefined,
  run: FanoutRun | undefined,
): number[] {
  if (!s || !run) return [];
  const ms = run.repeats.reduce((a, y) => a + y.windowMs, 0);
  return s.processes.map((_, k) => {
    const sec = run.repeats.reduce(
      (a, y) => a + (y.pidCpuSec?.[k] ?? (s.processes.length === 1 ? y.serverCpuSec : 0)),
      0,
    );
    return ms > 0 ? (sec * 1000) / ms : 0;
  });
}

export function checkHistoryTargets(
  r: Pick<HistoryResult, "settings" | "sides" | "failures">,
): TargetCheck[] {
  const st = r.settings;
  const shape = HISTORY_TARGETS.fanoutShape;
  const applies = st.rooms === shape.rooms && st.members === shape.members;
  const members = st.rooms * st.members;
  const out: TargetCheck[] = [];
  const failed = r.failures.map((f) => `${f.phase} threw`);
  for (const [on, off, what] of [
    ["oneOn", "oneOff", "1 node"],
    ["twoOn", "twoOff", "2 nodes + Redis (both nodes' CPU and redis-server's)"],
  ] as const) {
    const a = historyRun(r.sides, on, "closed");
    const b = historyRun(r.sides, off, "closed");
    const miss = [
      ...runMissing(r.sides[on], a, st.repeats, HISTORY_SIDE_LABELS[on], members),
      ...runMissing(r.sides[off], b, st.repeats, HISTORY_SIDE_LABELS[off], members),
      ...failed.filter((f) => f.includes(on) || f.includes(off) || f.startsWith("setup")),
    ];
    const x = a && b ? ratio(a.deliveriesPerCpuSec, b.deliveriesPerCpuSec) : Number.NaN;
    const pairs = Math.min(a?.repeats.length ?? 0, b?.repeats.length ?? 0);
    const paired = Array.from({ length: pairs }, (_, i) =>
      ratio(perCpu(a?.repeats[i] as FanoutResult), perCpu(b?.repeats[i] as FanoutResult)),
    );
    out.push({
      name: `fan-out deliveries per server-CPU-second, history 100 vs 0, ${what}, ${st.rooms} rooms × ${st.members}, closed loop`,
      target: `≥ ${HISTORY_TARGETS.onOffRatio}× history off at ${shape.rooms} × ${shape.members}`,
      measured: `${missingText(miss)}${x2(x)}× (on ${fmt(a?.deliveriesPerCpuSec ?? Number.NaN)}, repeats ${range(
        (a?.repeats ?? []).map(perCpu),
        0,
      )}; off ${fmt(b?.deliveriesPerCpuSec ?? Number.NaN)}, ${range((b?.repeats ?? []).map(perCpu), 0)}; paired repeats ${range(paired)}×)`,
      met: miss.length > 0 ? false : applies ? x >= HISTORY_TARGETS.onOffRatio : null,
    });
  }
  {
    let lost = 0;
    let duplicates = 0;
    let closes = 0;
    const miss: string[] = [];
    for (const side of HISTORY_SIDES) {
      const s = r.sides[side];
      if (!s) {
        miss.push(`${HISTORY_SIDE_LABELS[side]}: not measured`);
        continue;
      }
      for (const run of s.runs) {
        lost += run.lost;
        duplicates += run.duplicates;
        closes += run.unexpectedCloses;
      }
    }
    out.push({
      name: "messages lost or delivered twice, sockets closed, every side and mode",
      target: "0",
      measured: `${missingText(miss)}${lost} lost, ${duplicates} twice, ${closes} closed`,
      met: miss.length === 0 && lost === 0 && duplicates === 0 && closes === 0,
    });
  }
  return out;
}

const machineLine = (m: Machine, pinned: boolean) =>
  `${m.cores} cores (${m.cpuModel}), ${m.memoryGiB} GiB, Linux ${m.kernel}, Bun ${m.bun}${pinned ? "; servers pinned to one core, the load client to the other" : "; not pinned"}`;

const sourceLine = (k: HistoryResult["kabar"]) =>
  `Kabar measured: ${k.dir}, commit ${k.commit.slice(0, 7)}${k.dirty === true ? " + uncommitted changes in src/" : ""}`;

function cell(
  run: FanoutRun | undefined,
  f: (y: FanoutResult) => number,
  med: number,
  digits = 0,
): string {
  if (!run) return "missing";
  return `${fmt(med)} (${range(run.repeats.map(f), digits)})`;
}

export function historyMarkdown(r: HistoryResult, svgName: string): string {
  const st = r.settings;
  const lines: string[] = [
    `# History on vs off: fan-out cost (${r.profile} run)`,
    "",
    `Run of ${r.startedAt.slice(0, 16).replace("T", " ")} UTC, ${r.durationSec} s; ${machineLine(r.machine, r.pinned)}.`,
    `Load average ${r.loadAvg.start.join(" ")} at the start, ${r.loadAvg.end.join(" ")} at the end. ${sourceLine(r.kabar)}.`,
    "",
    `Shape: ${st.rooms} rooms × ${st.members} members on ${st.users} users (REST API), ${st.senders} sender${st.senders === 1 ? "" : "s"} per room, closed loop with ${st.window} in flight per sender (${st.closedMs / 1000} s window after ${st.warmupMs / 1000} s warm-up)${st.rates.length ? `, then ${st.rates.map((x) => x.label).join(", ")} open loop (${st.rateMs / 1000} s)` : ""}; ${st.repeats} repeat(s) per side in rotation, each on freshly started servers, a fresh redis-server and a fresh load client. Medians of the repeats with their range (min–max).`,
    "",
    `![history on vs off](${svgName})`,
    "",
    "| figure | setup | history 100 | history 0 | on ÷ off (paired repeats) |",
    "| --- | --- | ---: | ---: | ---: |",
  ];
  for (const [on, off, setup] of [
    ["oneOn", "oneOff", "1 node"],
    ["twoOn", "twoOff", "2 nodes + Redis"],
  ] as const) {
    const a = historyRun(r.sides, on, "closed");
    const b = historyRun(r.sides, off, "closed");
    const pairs = Math.min(a?.repeats.length ?? 0, b?.repeats.length ?? 0);
    const paired = Array.from({ length: pairs }, (_, i) =>
      ratio(perCpu(a?.repeats[i] as FanoutResult), perCpu(b?.repeats[i] as FanoutResult)),
    );
    const x = a && b ? ratio(a.deliveriesPerCpuSec, b.deliveriesPerCpuSec) : Number.NaN;
    lines.push(
      `| deliveries per server-CPU-second, closed loop | ${setup} | ${cell(a, perCpu, a?.deliveriesPerCpuSec ?? 0)} | ${cell(b, perCpu, b?.deliveriesPerCpuSec ?? 0)} | **${x2(x)}×** (${range(paired)}) |`,
    );
    const split = (s: HistorySideKey, run: FanoutRun | undefined) => {
      const side = r.sides[s];
      const c = historyCpuSplit(side, run);
      return c.length ? c.map((v, k) => `${side?.processes[k]} ${v.toFixed(2)}`).join(" + ") : "–";
    };
    lines.push(
      `| server CPU, closed loop (cores) | ${setup} | ${split(on, a)} | ${split(off, b)} | |`,
    );
    lines.push(
      `| deliveries/s, closed loop | ${setup} | ${fmt(a?.deliveriesPerSec ?? Number.NaN)} | ${fmt(b?.deliveriesPerSec ?? Number.NaN)} | |`,
    );
    for (const rate of st.rates) {
      const ar = historyRun(r.sides, on, "rate", rate.deliveriesPerSec);
      const br = historyRun(r.sides, off, "rate", rate.deliveriesPerSec);
      const us = (y: FanoutResult) =>
        y.windowDeliveries > 0 ? (y.serverCpuSec * 1e6) / y.windowDeliveries : 0;
      lines.push(
        `| server CPU per delivery at ${rate.label} (µs) | ${setup} | ${cell(ar, us, ar?.cpuPerDeliveryUs ?? 0, 1)} | ${cell(br, us, br?.cpuPerDeliveryUs ?? 0, 1)} | ${ar && br ? `${ratio(ar.cpuPerDeliveryUs, br.cpuPerDeliveryUs)}×` : "–"} |`,
      );
      lines.push(
        `| latency p99 at ${rate.label} (ms; max of all repeats) | ${setup} | ${ar ? `${fmt(ar.latency.p99Ms)} (max ${fmt(ar.latency.maxMs)})` : "missing"} | ${br ? `${fmt(br.latency.p99Ms)} (max ${fmt(br.latency.maxMs)})` : "missing"} | |`,
      );
    }
  }
  const lost = HISTORY_SIDES.map((s) => {
    const runs = r.sides[s]?.runs ?? [];
    return `${HISTORY_SIDE_LABELS[s]}: ${runs.reduce((a, x) => a + x.lost, 0)} lost, ${runs.reduce((a, x) => a + x.duplicates, 0)} twice`;
  });
  lines.push("", `Messages: ${lost.join("; ")}.`, "", "## Targets", "");
  lines.push("| target | wanted | measured | met |", "| --- | --- | --- | --- |");
  for (const t of r.targets)
    lines.push(
      `| ${t.name} | ${t.target} | ${t.measured} | ${t.met === null ? "n/a" : t.met ? "yes" : "**no**"} |`,
    );
  lines.push("", "## Servers", "");
  for (const s of r.servers)
    lines.push(
      `- **${HISTORY_SIDE_LABELS[s.side]}**: \`${s.program}\`; ${Object.entries(s.env)
        .map(([k, v]) => `${k}=${v}`)
        .join(" ")}`,
    );
  lines.push("", "## Sockets per node (per repeat)", "");
  for (const s of HISTORY_SIDES) {
    const side = r.sides[s];
    if (side)
      lines.push(`- ${side.label}: ${side.socketsPerNode.map((c) => c.join(" + ")).join(", ")}`);
  }
  if (r.disturbed.length > 0) {
    lines.push("", "## Windows other processes disturbed", "");
    for (const d of r.disturbed)
      lines.push(`- ${d.phase}: ${d.otherCores} cores${d.retried ? " (run again)" : " (kept)"}`);
  }
  const waited = r.background.reduce((a, w) => a + w.waitedMs, 0);
  lines.push(
    "",
    `Waited ${Math.round(waited / 1000)} s in all for quiet; ${r.background.filter((w) => !w.quiet).length} of ${r.background.length} waits ended with the machine still busy.`,
  );
  if (r.failures.length > 0) {
    lines.push("", "## Failures", "");
    for (const f of r.failures) lines.push(`- ${f.phase}: ${f.error}`);
  }
  lines.push("");
  return lines.join("\n");
}

const esc = (s: string) => s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
const num = (x: number) => (Math.round(x * 10) / 10).toString();
const txt = (x: number, y: number, s: string, attrs = "") =>
  `<text x="${num(x)}" y="${num(y)}" ${attrs}>${esc(s)}</text>`;

/** Bars of deliveries per server-CPU-second (closed loop), on next to off, with min–max whiskers. */
export function historySvg(r: HistoryResult): string {
  const W = 820;
  const H = 420;
  const ON = "#2563eb";
  const OFF = "#a3a3a3";
  const INK = "#1f2937";
  const MUTED = "#6b7280";
  const groups = [
    ["oneOn", "oneOff", "1 node"],
    ["twoOn", "twoOff", "2 nodes + Redis (nodes' + Redis's CPU)"],
  ] as const;
  const all = HISTORY_SIDES.flatMap((s) =>
    (historyRun(r.sides, s, "closed")?.repeats ?? []).map(perCpu),
  );
  const top = Math.max(1, ...all) * 1.12;
  const x0 = 90;
  const plotTop = 90;
  const plotBottom = H - 70;
  const y = (v: number) => plotBottom - (v / top) * (plotBottom - plotTop);
  const m = r.machine;
  const out = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="system-ui, -apple-system, Segoe UI, Helvetica, Arial, sans-serif">`,
    `<rect x="0" y="0" width="${W}" height="${H}" fill="#ffffff"/>`,
    txt(
      24,
      30,
      "Fan-out with room history on (100) vs off (0)",
      `font-size="18" font-weight="700" fill="${INK}"`,
    ),
    txt(
      24,
      50,
      `${r.profile} run, ${r.startedAt.slice(0, 16).replace("T", " ")} UTC · ${m.cores} cores ${m.cpuModel} · Bun ${m.bun} · ${r.settings.rooms} rooms × ${r.settings.members}, closed loop · median of ${r.settings.repeats}, whiskers min–max`,
      `font-size="11" fill="${MUTED}"`,
    ),
    `<rect x="${W - 250}" y="62" width="12" height="12" fill="${ON}"/>`,
    txt(W - 233, 72, "history 100", `font-size="12" fill="${INK}"`),
    `<rect x="${W - 150}" y="62" width="12" height="12" fill="${OFF}"/>`,
    txt(W - 133, 72, "history 0", `font-size="12" fill="${INK}"`),
    txt(24, plotTop - 8, "deliveries per server-CPU-second", `font-size="11" fill="${MUTED}"`),
  ];
  const step = 10 ** Math.floor(Math.log10(top / 2));
  for (let v = 0; v <= top; v += step * (top / step > 10 ? 2 : 1)) {
    out.push(
      `<line x1="${x0}" y1="${num(y(v))}" x2="${W - 24}" y2="${num(y(v))}" stroke="#e5e7eb"/>`,
    );
    out.push(txt(x0 - 6, y(v) + 4, fmt(v), `font-size="10" fill="${MUTED}" text-anchor="end"`));
  }
  const slot = (W - 24 - x0) / groups.length;
  groups.forEach(([on, off, label], g) => {
    const cx = x0 + slot * g + slot / 2;
    const bw = Math.min(90, slot * 0.28);
    [on, off].forEach((side, j) => {
      const run = historyRun(r.sides, side, "closed");
      const bx = j === 0 ? cx - bw - 4 : cx + 4;
      const v = run?.deliveriesPerCpuSec ?? 0;
      out.push(
        `<rect x="${num(bx)}" y="${num(y(v))}" width="${num(bw)}" height="${num(plotBottom - y(v))}" fill="${j === 0 ? ON : OFF}" rx="2"/>`,
      );
      const reps = (run?.repeats ?? []).map(perCpu);
      if (reps.length > 1) {
        const lo = Math.min(...reps);
        const hi = Math.max(...reps);
        const wx = bx + bw / 2;
        out.push(
          `<line x1="${num(wx)}" y1="${num(y(lo))}" x2="${num(wx)}" y2="${num(y(hi))}" stroke="${INK}" stroke-width="1.2"/>`,
        );
        for (const w of [lo, hi])
          out.push(
            `<line x1="${num(wx - 6)}" y1="${num(y(w))}" x2="${num(wx + 6)}" y2="${num(y(w))}" stroke="${INK}" stroke-width="1.2"/>`,
          );
      }
      out.push(
        txt(
          bx + bw / 2,
          y(Math.max(v, ...reps)) - 6,
          run ? fmt(v) : "missing",
          `font-size="11" fill="${INK}" text-anchor="middle" stroke="#ffffff" stroke-width="3" paint-order="stroke"`,
        ),
      );
    });
    const a = historyRun(r.sides, on, "closed");
    const b = historyRun(r.sides, off, "closed");
    const x = a && b ? ratio(a.deliveriesPerCpuSec, b.deliveriesPerCpuSec) : Number.NaN;
    out.push(
      txt(
        cx,
        plotBottom + 18,
        label,
        `font-size="12.5" font-weight="600" fill="${INK}" text-anchor="middle"`,
      ),
    );
    out.push(
      txt(
        cx,
        plotBottom + 36,
        `on ÷ off ${x2(x)}× (target ≥ ${HISTORY_TARGETS.onOffRatio}×)`,
        `font-size="12" fill="${Number.isFinite(x) && x >= HISTORY_TARGETS.onOffRatio ? INK : "#dc2626"}" text-anchor="middle"`,
      ),
    );
  });
  out.push("</svg>", "");
  return out.join("\n");
}

// --- reconnect storm -------------------------------------------------------------------------

export function checkStormTargets(
  r: Pick<StormResult, "settings" | "failures" | "open" | "collect" | "stop" | "health">,
): TargetCheck[] {
  const st = r.settings;
  const shape = HISTORY_TARGETS.stormShape;
  const applies =
    st.rooms === shape.rooms &&
    st.members === shape.members &&
    st.deliveriesPerSec === shape.deliveriesPerSec;
  const n = st.rooms * st.members;
  const c = r.collect;
  const o = r.open;
  const base: string[] = [...r.failures.map((f) => `${f.phase} threw: ${f.error.slice(0, 120)}`)];
  if (!o) base.push("sockets not opened");
  else {
    if (o.opened !== n || o.failed > 0)
      base.push(`${o.opened} of ${n} sockets opened (${o.failed} failed)`);
    if (o.onA !== n / 2 || o.onB !== n / 2)
      base.push(`sockets not split ${n / 2} + ${n / 2} (A ${o.onA}, B ${o.onB})`);
  }
  if (!c) base.push("no collected result");
  const onB = o?.onB ?? 0;
  const out: TargetCheck[] = [];
  const judged = (ok: boolean, miss: string[]) =>
    miss.length > 0 ? false : applies ? ok : ok ? null : false;
  {
    const miss = [...base];
    if (c && c.closed < onB)
      miss.push(`only ${c.closed} of node B's ${onB} sockets saw their close`);
    const share = c && onB > 0 ? c.recovered / onB : Number.NaN;
    out.push({
      name: `reconnect storm: node B's clients back with "recovered": true (join_room + since on node A)`,
      target: "100%",
      measured: `${missingText(miss)}${Number.isFinite(share) ? `${round1(share * 100)}%` : "–"} (${c?.recovered ?? "–"} of ${onB}; rejoined ${c?.rejoined ?? "–"}, recovered false ${c?.notRecovered ?? "–"}, gave up ${c?.gaveUp ?? "–"}; attempts ${c?.attempts ?? "–"}, at most ${c?.maxAttempts ?? "–"} per client)`,
      met: judged(c !== undefined && onB > 0 && c.recovered === onB && c.gaveUp === 0, miss),
    });
  }
  {
    const miss = [...base];
    const ok =
      c !== undefined &&
      c.holes === 0 &&
      c.socketsWithGaps === 0 &&
      c.incomplete === 0 &&
      c.epochChanges === 0;
    out.push({
      name: "reconnect storm: gaps in every client's seq list (1..N across the disconnect, N = messages sent to its room)",
      target: "0",
      measured: `${missingText(miss)}${c ? `${c.holes} missing seqs in ${c.socketsWithGaps} clients; ${c.incomplete} clients short of the room's last message; ${c.epochChanges} saw another epoch` : "–"}`,
      met: judged(ok, miss),
    });
  }
  {
    const miss = [...base];
    out.push({
      name: "reconnect storm: duplicates in every client's seq list",
      target: "0",
      measured: `${missingText(miss)}${c ? `${c.duplicates} repeated seqs in ${c.socketsWithDuplicates} clients` : "–"}`,
      met: judged(c !== undefined && c.duplicates === 0, miss),
    });
  }
  {
    const miss = [...base];
    if (c && c.allCaughtUpMs === null)
      miss.push(
        `${c.rejoined - c.caughtUp.count} rejoined and ${c.closed - c.rejoined} not rejoined clients never caught up`,
      );
    out.push({
      name: "reconnect storm: time from the SIGKILL until every reconnected client's latest seq equals its room's latest",
      target: "every one catches up (time reported, no limit set)",
      measured: `${missingText(miss)}${c?.allCaughtUpMs != null ? `${fmt(c.allCaughtUpMs)} ms` : "–"} (caught up p50 ${c ? fmt(c.caughtUp.p50Ms) : "–"} ms; back in the room p50 ${c ? fmt(c.rejoinedAt.p50Ms) : "–"}, max ${c ? fmt(c.rejoinedAt.maxMs) : "–"} ms; close seen max ${c ? fmt(c.closeSeen.maxMs) : "–"} ms)`,
      met: judged(c !== undefined && c.allCaughtUpMs !== null, miss),
    });
  }
  {
    const miss = [...base];
    const planned = st.deliveriesPerSec;
    const got = c?.deliveriesPerSecBeforeKill ?? Number.NaN;
    const refused = c ? c.sentPerRoom.some((s, k) => s !== c.roomTop[k]) : false;
    if (refused)
      miss.push(
        `sent ${JSON.stringify(c?.sentPerRoom)} but rooms reached ${JSON.stringify(c?.roomTop)}`,
      );
    if (c && c.closedOnA > 0) miss.push(`${c.closedOnA} sockets on node A closed`);
    if (c && c.errorFrames > 0) miss.push(`${c.errorFrames} error frames`);
    const ok = Math.abs(got - planned) <= planned * HISTORY_TARGETS.stormRateTolerance;
    out.push({
      name: "reconnect storm: the load as planned (deliveries/s before the kill; nothing refused; node A's sockets untouched)",
      target: `${fmt(planned)} ± ${HISTORY_TARGETS.stormRateTolerance * 100}%`,
      measured: `${missingText(miss)}${fmt(got)} deliveries/s (${st.senders} senders per room at ${st.perSenderMsgPerSec} msg/s)`,
      met: judged(ok, miss),
    });
  }
  return out;
}

const round1 = (x: number) => Math.round(x * 10) / 10;

export function stormMarkdown(r: StormResult): string {
  const st = r.settings;
  const c = r.collect;
  const t = (x: { p50Ms: number; p99Ms: number; maxMs: number; count: number } | undefined) =>
    x ? `p50 ${fmt(x.p50Ms)}, p99 ${fmt(x.p99Ms)}, max ${fmt(x.maxMs)} (${x.count} clients)` : "–";
  const lines = [
    `# Reconnect storm (${r.profile} run)`,
    "",
    `Run of ${r.startedAt.slice(0, 16).replace("T", " ")} UTC, ${r.durationSec} s; ${machineLine(r.machine, r.pinned)}.`,
    `Load average ${r.loadAvg.start.join(" ")} at the start, ${r.loadAvg.end.join(" ")} at the end. ${sourceLine(r.kabar)}.`,
    "",
    `Shape: ${st.rooms * st.members} clients (one user each, in the SQLite file both nodes share) in ${st.rooms} rooms × ${st.members}, half of each room on node A and half on node B; ${st.senders} senders per room on node A at ${st.perSenderMsgPerSec} msg/s each (${fmt(st.deliveriesPerSec)} deliveries/s planned); node B SIGKILLed after ${st.warmupMs / 1000} s, messages flowing for ${st.afterKillMs / 1000} s more; its clients reconnect to node A at once with \`join_room\` + \`since\` (retry every ${st.reconnect.retryMs} ms, at most ${st.reconnect.maxAttempts} attempts in ${st.reconnect.giveUpMs / 1000} s). Destination addresses 127.0.0.1–${st.hosts}, source addresses 127.0.0.101–${100 + st.sources}.`,
    "",
    "| figure | value |",
    "| --- | ---: |",
    `| clients open / failed (node A + node B) | ${r.open ? `${r.open.opened} / ${r.open.failed} (${r.open.onA} + ${r.open.onB}; health ${r.health?.a ?? "–"} + ${r.health?.b ?? "–"})` : "missing"} |`,
    `| deliveries/s before the kill | ${c ? fmt(c.deliveriesPerSecBeforeKill) : "missing"} |`,
    `| messages sent (per room) | ${r.stop ? `${fmt(r.stop.sent)} (${range(r.stop.sentPerRoom, 0)})` : "missing"} |`,
    `| node B's clients that saw the close / rejoined / recovered | ${c ? `${c.closed} / ${c.rejoined} / ${c.recovered} of ${r.open?.onB ?? "?"}` : "missing"} |`,
    `| recovered share | ${c && r.open ? `${round1((c.recovered / Math.max(1, r.open.onB)) * 100)}%` : "missing"} |`,
    `| reconnect attempts (at most per client) | ${c ? `${c.attempts} (${c.maxAttempts})` : "missing"} |`,
    `| gaps: missing seqs / clients with any; clients short of the last | ${c ? `${c.holes} / ${c.socketsWithGaps}; ${c.incomplete}` : "missing"} |`,
    `| duplicates: repeated seqs / clients with any | ${c ? `${c.duplicates} / ${c.socketsWithDuplicates}` : "missing"} |`,
    `| messages replayed on recovery (all clients) | ${c ? fmt(c.replayed) : "missing"} |`,
    `| from the kill: close seen (ms) | ${t(c?.closeSeen)} |`,
    `| from the kill: back in the room (room_joined, ms) | ${t(c?.rejoinedAt)} |`,
    `| from the kill: caught up with the room's latest seq (ms) | ${t(c?.caughtUp)} |`,
    `| **from the kill until every reconnected client had caught up** | ${c?.allCaughtUpMs != null ? `**${fmt(c.allCaughtUpMs)} ms**` : "**never (missing)**"} |`,
    `| node A's / redis-server's CPU in the ${r.cpu ? fmt(r.cpu.windowMs / 1000) : "?"} s after the kill (CPU-s) | ${r.cpu ? `${r.cpu.nodeA} / ${r.cpu.redis}` : "missing"} |`,
    `| node A's sockets after the storm (health) | ${r.health?.aAfter ?? "missing"} |`,
    "",
    "## Targets",
    "",
    "| target | wanted | measured | met |",
    "| --- | --- | --- | --- |",
    ...r.targets.map(
      (x) =>
        `| ${x.name} | ${x.target} | ${x.measured} | ${x.met === null ? "n/a" : x.met ? "yes" : "**no**"} |`,
    ),
    "",
    "## Servers",
    "",
    `\`${r.program}\`; ${Object.entries(r.env)
      .map(([k, v]) => `${k}=${v}`)
      .join(" ")}`,
    "",
  ];
  if (c && c.errors.length > 0)
    lines.push("## Client notes", "", ...c.errors.map((e) => `- ${e}`), "");
  if (r.failures.length > 0)
    lines.push("## Failures", "", ...r.failures.map((f) => `- ${f.phase}: ${f.error}`), "");
  const waited = r.background.reduce((a, w) => a + w.waitedMs, 0);
  lines.push(
    `Waited ${Math.round(waited / 1000)} s for quiet before sending${r.background.some((w) => !w.quiet) ? ` (still busy: ${r.background.map((w) => w.otherCores).join(", ")} other cores)` : ""}.`,
    "",
  );
  return lines.join("\n");
}
