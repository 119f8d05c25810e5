// The 100k-connections run (bench/c100k.ts) checked against its targets (CLUSTER_TARGETS in
// bench/targets.ts), as Markdown and as an SVG chart (the broadcast's arrival curve and the
// headline figures). Missing data never passes: a phase that did not run or threw, a memory
// reading without its forced GC, a broadcast nobody answered — each is named and is a miss.
import type { C100kResult } from "./c100k.ts";
import { hostLine, sourceLine } from "./cluster-report.ts";
import { fmt } from "./report.ts";
import type { TargetCheck } from "./result.ts";
import { CLUSTER_TARGETS } from "./targets.ts";

const missingText = (m: string[]) => (m.length ? `MISSING: ${m.join("; ")}. ` : "");

export function checkC100kTargets(
  r: Pick<C100kResult, "settings" | "open" | "memory" | "broadcast" | "failures">,
): TargetCheck[] {
  const n = r.settings.connections;
  const goal = CLUSTER_TARGETS.connections;
  const o = r.open;
  const b = r.broadcast;
  const m = r.memory;
  const out: TargetCheck[] = [];
  {
    const miss = o ? [] : ["connections: not measured"];
    const opened = o?.opened ?? 0;
    const short = n < goal;
    out.push({
      name: "concurrent authenticated connections, one socket per user, on this machine",
      target: `≥ ${goal.toLocaleString("en-US")} (this run: ${n.toLocaleString("en-US")})`,
      measured: `${missingText(miss)}${opened.toLocaleString("en-US")} of ${n.toLocaleString("en-US")} open and welcomed at once${o ? ` in ${o.openSec} s` : ""}${short ? "; a short run, under the target's count: not judged" : ""}`,
      met: miss.length > 0 || opened < n ? false : short ? null : true,
    });
  }
  {
    const miss = o ? [] : ["connections: not measured"];
    const closed = b?.closed ?? 0;
    out.push({
      name: "failed connections (refused, timed out, closed before the broadcast arrived)",
      target: "0",
      measured: `${missingText(miss)}${o?.failed ?? "–"} failed${o?.errors.length ? ` (${o.errors.slice(0, 3).join("; ")})` : ""}, ${closed} closed by the server`,
      met: miss.length === 0 && (o?.failed ?? 1) === 0 && closed === 0,
    });
  }
  {
    const miss: string[] = [];
    if (!b) miss.push("broadcast: not measured");
    else if (b.latency.count === 0) miss.push("broadcast: no socket answered");
    out.push({
      name: "one broadcast (REST, as the superuser) reaches every socket: lost",
      target: "0 lost, 0 twice",
      measured: `${missingText(miss)}${b ? `${b.lost} lost, ${b.duplicates} twice, of ${b.sockets.toLocaleString("en-US")} sockets; p50 ${b.latency.p50Ms} ms, p99 ${b.latency.p99Ms} ms, max ${b.latency.maxMs} ms` : "–"}`,
      met:
        miss.length === 0 &&
        b !== undefined &&
        b.lost === 0 &&
        b.duplicates === 0 &&
        b.sockets === n,
    });
  }
  {
    const miss: string[] = [];
    if (!m) miss.push("memory: not measured");
    else if (!m.afterGc) miss.push("a node did not answer its GC signal");
    out.push({
      name: "every phase ran, every memory reading followed a forced GC in every node",
      target: "no harness failure, every GC hook answered",
      measured:
        r.failures.length + miss.length === 0
          ? "yes"
          : `${missingText(miss)}${r.failures.map((f) => `${f.phase}: ${f.error}`).join("; ")}`,
      met: r.failures.length === 0 && miss.length === 0,
    });
  }
  return out;
}

const MET = (m: boolean | null) => (m === null ? "n/a" : m ? "yes" : "**no**");

export function c100kMarkdown(r: C100kResult, chart: string): string {
  const s = r.settings;
  const o = r.open;
  const m = r.memory;
  const b = r.broadcast;
  const v = (x: number | undefined, unit = "") => (x === undefined ? "–" : `${fmt(x)}${unit}`);
  const lines = [
    `# Kabar: ${s.connections.toLocaleString("en-US")} concurrent connections, ${r.startedAt}`,
    "",
    `Machine: ${hostLine(r.machine, false, 0, 0)}. Servers, Redis and load clients share every core. ${sourceLine(r.kabar)}`,
    "",
    `Load average (1, 5, 15 min): ${r.loadAvg.start.join(", ")} at the start, ${r.loadAvg.beforeOpen.join(", ")} just before opening, ${r.loadAvg.end.join(", ")} at the end; the run took ${r.durationSec} s.${r.background.map((w) => ` Before opening the harness waited ${(w.waitedMs / 1000).toFixed(1)} s for other processes to go quiet (< 0.15 cores): ${w.quiet ? "quiet" : `still busy, ${w.otherCores} cores`}.`).join("")}`,
    "",
    "## Settings",
    "",
    `- Server: \`${s.program}\`, ${s.workers} nodes, with a redis-server of its own (\`${s.redis}\`); users in one SQLite file the nodes share.`,
    `- Environment: ${Object.entries(s.env)
      .map(([k, x]) => `\`${k}=${x}\``)
      .join(" ")}`,
    `- ${s.users.toLocaleString("en-US")} users written straight into the store (one transaction, one argon2 hash: bench/users.ts), one socket each, tokens signed like Kabar's.`,
    `- Load: ${s.clients} client processes (bench/c100k-client.ts, raw WebSockets over Bun.connect, at most 19,000 sockets each), ${s.concurrency} sockets opening at once per client, socket g to 127.0.0.(1 + g mod ${s.hosts}); a socket counts as open at its \`welcome\` (token checked, user loaded, counted cluster-wide), ${s.socketTimeoutMs / 1000} s timeout each.`,
    "- Memory: RSS of every node process (/proc/<pid>/status) after a full GC in each (SIGUSR2, bench/gc-hook.ts), before and after opening; redis-server's RSS alongside.",
    "- Broadcast: `POST /api/v1/ws/broadcast` as the superuser; the send time is taken just before the request, each socket's receipt time in its client, on one clock (each client's offset to the harness's clock is measured, min round trip of 5, and taken off).",
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
    "| figure | value |",
    "| --- | ---: |",
    `| sockets attempted / open and welcomed / failed | ${v(o?.attempted)} / ${v(o?.opened)} / ${v(o?.failed)} |`,
    `| time to open them all (s) | ${v(o?.openSec)} |`,
    `| connections / s | ${v(o?.connPerSec)} |`,
    `| each client's time to open its share (s) | ${o?.perClientSec.map((x) => fmt(x)).join(", ") ?? "–"} |`,
    `| sockets per node | ${o?.perNode.map((x) => fmt(x)).join(", ") ?? "–"} |`,
    `| CPU while opening: nodes / supervisor / redis-server / clients / others (s) | ${o ? `${fmt(o.cpuSec.nodes)} / ${fmt(o.cpuSec.supervisor)} / ${fmt(o.cpuSec.redis)} / ${fmt(o.cpuSec.clients)} / ${fmt(o.cpuSec.other)}` : "–"} |`,
    `| server CPU per connection, nodes + redis-server (µs) | ${v(o?.serverCpuPerConnUs)} |`,
    `| hypervisor steal while opening (s) | ${v(o?.cpuSec.steal)} |`,
    `| RSS of the nodes before → after (MiB) | ${m ? `${fmt(m.nodesBeforeMiB)} → ${fmt(m.nodesAfterMiB)}` : "–"} |`,
    `| RSS per connection, nodes (KiB) | ${v(m?.nodesPerConnKiB)} |`,
    `| RSS of redis-server before → after (MiB) | ${m ? `${fmt(m.redisBeforeMiB)} → ${fmt(m.redisAfterMiB)}` : "–"} |`,
    `| RSS per connection, redis-server (KiB) | ${v(m?.redisPerConnKiB)} |`,
    `| RSS per connection, nodes + redis-server (KiB) | ${v(m?.totalPerConnKiB)} |`,
    `| RSS of each node after (MiB) | ${m?.perNodeAfterMiB.map((x) => fmt(x)).join(", ") ?? "–"} |`,
    `| RSS of the supervisor (MiB, no sockets) | ${v(m?.supervisorMiB ?? undefined)} |`,
    `| broadcast: sockets / received / lost / twice | ${b ? `${fmt(b.sockets)} / ${fmt(b.received)} / ${fmt(b.lost)} / ${fmt(b.duplicates)}` : "–"} |`,
    `| broadcast latency min / p50 / p90 / p99 / max (ms) | ${b ? `${fmt(b.latency.minMs)} / ${fmt(b.latency.p50Ms)} / ${fmt(b.latency.p90Ms)} / ${fmt(b.latency.p99Ms)} / ${fmt(b.latency.maxMs)}` : "–"} |`,
    `| CPU from sending until every client answered: nodes / redis-server / clients / others (s) | ${b ? `${fmt(b.cpuSec.nodes)} / ${fmt(b.cpuSec.redis)} / ${fmt(b.cpuSec.clients)} / ${fmt(b.cpuSec.other)}` : "–"} |`,
    `| REST call answered after (ms); recipients on the answering node | ${b ? `${fmt(b.restMs)}; ${fmt(b.restRecipients)}` : "–"} |`,
    `| clients' clock offsets (ms, taken off; ± uncertainty) | ${b ? `${b.clockOffsetsMs.map((x) => fmt(x)).join(", ")} (± ${fmt(b.clockUncertaintyMs)})` : "–"} |`,
    "",
    `![${s.connections.toLocaleString("en-US")} connections](${chart})`,
    "",
  );
  return lines.join("\n");
}

// ---------------------------------------------------------------- SVG

const INK = "#1f2937";
const MUTED = "#6b7280";
const BLUE = "#2563eb";
const esc = (s: string) => s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
const n1 = (x: number) => (Math.round(x * 10) / 10).toString();
const txt = (x: number, y: number, s: string, a = "") =>
  `<text x="${n1(x)}" y="${n1(y)}" ${a}>${esc(s)}</text>`;
const ln = (x1: number, y1: number, x2: number, y2: number, a: string) =>
  `<line x1="${n1(x1)}" y1="${n1(y1)}" x2="${n1(x2)}" y2="${n1(y2)}" ${a}/>`;

/** A round axis step for `max` with about 5 ticks. */
function step(max: number): number {
  const raw = Math.max(max, 1e-6) / 5;
  const p = 10 ** Math.floor(Math.log10(raw));
  for (const k of [1, 2, 2.5, 5, 10]) if (k * p >= raw) return k * p;
  return 10 * p;
}

export function c100kSvg(r: C100kResult): string {
  const W = 1000;
  const H = 520;
  const m = r.machine;
  const s = r.settings;
  const b = r.broadcast;
  const o = r.open;
  const mem = r.memory;
  const out: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="system-ui, -apple-system, Segoe UI, Helvetica, Arial, sans-serif">`,
    `<rect x="0" y="0" width="${W}" height="${H}" fill="#ffffff"/>`,
    txt(
      24,
      32,
      `Kabar: ${s.connections.toLocaleString("en-US")} concurrent connections, one broadcast to all`,
      `font-size="20" font-weight="700" fill="${INK}"`,
    ),
    txt(
      24,
      54,
      `${r.startedAt.slice(0, 16).replace("T", " ")} UTC · ${m.cores} cores ${m.cpuModel}, ${m.memoryGiB} GiB · Bun ${m.bun} · ${s.workers} nodes + redis-server · ${s.clients} load clients · load avg ${r.loadAvg.beforeOpen[0]}`,
      `font-size="12" fill="${MUTED}"`,
    ),
  ];
  // Left: share of the sockets that had the broadcast, by time since it was sent.
  const x0 = 70;
  const y0 = 110;
  const w = 560;
  const h = 330;
  out.push(
    txt(
      24,
      y0 - 20,
      "Broadcast arrival: share of all sockets that had it, by ms after sending",
      `font-size="15" font-weight="600" fill="${INK}"`,
    ),
  );
  const cdf = b?.cdf ?? [];
  const maxMs = Math.max(cdf[cdf.length - 1]?.ms ?? 1, 1e-3);
  const st = step(maxMs);
  const xMax = Math.ceil(maxMs / st) * st;
  const X = (ms: number) => x0 + (ms / xMax) * w;
  const Y = (share: number) => y0 + h - share * h;
  for (let t = 0; t <= xMax + 1e-9; t += st) {
    out.push(ln(X(t), y0, X(t), y0 + h, `stroke="#e5e7eb"`));
    out.push(
      txt(
        X(t),
        y0 + h + 16,
        fmt(Number(t.toPrecision(6))),
        `font-size="11" fill="${MUTED}" text-anchor="middle"`,
      ),
    );
  }
  for (const q of [0, 0.25, 0.5, 0.75, 1]) {
    out.push(ln(x0, Y(q), x0 + w, Y(q), `stroke="#e5e7eb"`));
    out.push(
      txt(x0 - 6, Y(q) + 4, `${q * 100}%`, `font-size="11" fill="${MUTED}" text-anchor="end"`),
    );
  }
  out.push(
    txt(
      x0 + w / 2,
      y0 + h + 34,
      "ms after the REST call was sent",
      `font-size="11.5" fill="${INK}" text-anchor="middle"`,
    ),
  );
  if (cdf.length > 0) {
    const pts = cdf.map((p) => `${n1(X(p.ms))},${n1(Y(p.share))}`).join(" ");
    out.push(`<polyline points="${pts}" fill="none" stroke="${BLUE}" stroke-width="2.5"/>`);
    for (const [label, ms] of [
      ["p50", b?.latency.p50Ms ?? 0],
      ["p99", b?.latency.p99Ms ?? 0],
      ["max", b?.latency.maxMs ?? 0],
    ] as const) {
      out.push(
        ln(X(ms), y0, X(ms), y0 + h, `stroke="#dc2626" stroke-width="1" stroke-dasharray="4 3"`),
      );
      out.push(
        txt(
          X(ms) - 4,
          y0 + 14 + (label === "p99" ? 16 : label === "max" ? 32 : 0),
          `${label} ${fmt(ms)} ms`,
          `font-size="10.5" font-weight="600" fill="#dc2626" text-anchor="end" stroke="#ffffff" stroke-width="3" paint-order="stroke"`,
        ),
      );
    }
  } else
    out.push(
      txt(
        x0 + w / 2,
        y0 + h / 2,
        "missing: no broadcast measured",
        `font-size="14" fill="#dc2626" text-anchor="middle"`,
      ),
    );
  // Right: the headline figures.
  const fx = 680;
  const facts: [string, string][] = [
    ["open and welcomed", o ? `${fmt(o.opened)} of ${fmt(o.attempted)}` : "missing"],
    ["failed connections", o ? fmt(o.failed + (b?.closed ?? 0)) : "missing"],
    ["time to open them all", o ? `${fmt(o.openSec)} s (${fmt(o.connPerSec)}/s)` : "missing"],
    [
      "server CPU per connection",
      o ? `${fmt(o.serverCpuPerConnUs)} µs (nodes + Redis)` : "missing",
    ],
    ["RSS per connection, nodes", mem ? `${fmt(mem.nodesPerConnKiB)} KiB` : "missing"],
    ["RSS per connection, + Redis", mem ? `${fmt(mem.totalPerConnKiB)} KiB` : "missing"],
    ["RSS of the nodes, total", mem ? `${fmt(mem.nodesAfterMiB)} MiB` : "missing"],
    ["broadcast lost", b ? `${fmt(b.lost)} of ${fmt(b.sockets)}` : "missing"],
    [
      "broadcast p50 / p99 / max",
      b
        ? `${fmt(b.latency.p50Ms)} / ${fmt(b.latency.p99Ms)} / ${fmt(b.latency.maxMs)} ms`
        : "missing",
    ],
  ];
  out.push(txt(fx, y0 - 20, "Figures", `font-size="15" font-weight="600" fill="${INK}"`));
  facts.forEach(([k, x], i) => {
    out.push(txt(fx, y0 + 6 + i * 36, k, `font-size="11" fill="${MUTED}"`));
    out.push(
      txt(
        fx,
        y0 + 23 + i * 36,
        x,
        `font-size="15" font-weight="600" fill="${x === "missing" ? "#dc2626" : INK}"`,
      ),
    );
  });
  const met = r.targets.filter((t) => t.met === true).length;
  const judged = r.targets.filter((t) => t.met !== null).length;
  out.push(
    txt(
      24,
      H - 16,
      `One socket per user (${fmt(s.users)} users) · ${s.workers} nodes · socket g to 127.0.0.(1 + g mod ${s.hosts}) · nothing pinned · targets met: ${met} of ${judged} judged.`,
      `font-size="11.5" fill="${INK}"`,
    ),
  );
  out.push("</svg>", "");
  return out.join("\n");
}
