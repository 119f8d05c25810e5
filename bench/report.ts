// The Markdown summary of one run: machine, targets, and every figure (Kabar, baseline, ratio).

import type { FanoutRun } from "./paired.ts";
import type { BenchResult, ServerResults } from "./result.ts";
import { ratio } from "./targets.ts";

export interface Row {
  section: string;
  metric: string;
  kabar: number;
  baseline: number;
  /** Which way is better, for the reader ("" = context, not a score). */
  better: "higher" | "lower" | "zero" | "";
}

type Get = (x: ServerResults) => number;
type Spec = readonly [metric: string, get: Get, better: Row["better"]];
type RunSpec = readonly [metric: string, get: (y: FanoutRun) => number, better: Row["better"]];

export function fmt(x: number): string {
  if (!Number.isFinite(x)) return "–";
  if (Number.isInteger(x)) return x.toLocaleString("en-US");
  const a = Math.abs(x);
  if (a >= 1000) return Math.round(x).toLocaleString("en-US");
  if (a >= 100) return x.toFixed(0);
  if (a >= 10) return x.toFixed(1);
  return x.toFixed(a >= 1 ? 2 : 3);
}

const perSec = (sec: number, ms: number) => (ms > 0 ? (sec * 1000) / ms : 0);

const openSecAll = (x: ServerResults) => x.connections.repeats.reduce((a, r) => a + r.openSec, 0);

const CONNECTIONS: Spec[] = [
  ["sockets open and joined, all repeats", (x) => x.connections.opened, "higher"],
  ["time to open all (s)", (x) => x.connections.openSec, "lower"],
  ["connections / s", (x) => x.connections.connPerSec, "higher"],
  ["server RSS per connection (KiB)", (x) => x.connections.rssPerConnKiB, "lower"],
  ["server CPU per connection (µs)", (x) => x.connections.cpuPerConnUs, "lower"],
  ["one message to every socket: lost", (x) => x.connections.pulse.lost, "zero"],
  [
    "other processes' CPU meanwhile (cores)",
    (x) => perSec(x.connections.otherCpuSec, openSecAll(x) * 1000),
    "",
  ],
  [
    "hypervisor steal, whole VM (cores)",
    (x) => perSec(x.connections.stealSec, openSecAll(x) * 1000),
    "",
  ],
];

const FANOUT_RUN: RunSpec[] = [
  ["delivered / s", (y) => y.deliveriesPerSec, ""],
  ["deliveries per server-CPU-second", (y) => y.deliveriesPerCpuSec, "higher"],
  ["server CPU per delivery (µs)", (y) => y.cpuPerDeliveryUs, "lower"],
  ["latency p50 (ms)", (y) => y.latency.p50Ms, "lower"],
  ["latency p95 (ms)", (y) => y.latency.p95Ms, "lower"],
  ["latency p99 (ms)", (y) => y.latency.p99Ms, "lower"],
  ["latency max (ms)", (y) => y.latency.maxMs, "lower"],
  ["lost", (y) => y.lost, "zero"],
  ["client CPU (cores)", (y) => perSec(y.clientCpuSec, y.windowMs), ""],
  ["other processes' CPU (cores)", (y) => perSec(y.otherCpuSec, y.windowMs), ""],
  ["hypervisor steal, whole VM (cores)", (y) => perSec(y.stealSec, y.windowMs), ""],
];

const CHURN: Spec[] = [
  ["operations / s", (x) => x.churn.opsPerSec, "higher"],
  ["server CPU per operation (µs)", (x) => x.churn.cpuPerOpUs, "lower"],
  ["server RSS before the first repeat (MiB)", (x) => x.churn.rssBeforeMiB, ""],
  ["server RSS after the last repeat (MiB)", (x) => x.churn.rssAfterMiB, "lower"],
  ["failed operations, all repeats", (x) => x.churn.failed, "zero"],
  ["other processes' CPU meanwhile (cores)", (x) => perSec(x.churn.otherCpuSec, x.churn.ms), ""],
  ["hypervisor steal, whole VM (cores)", (x) => perSec(x.churn.stealSec, x.churn.ms), ""],
];

const NOISY: Spec[] = [
  ["others' p99, quiet (ms)", (x) => x.noisy.quiet.latency.p99Ms, "lower"],
  ["others' p99, beside the flooder (ms)", (x) => x.noisy.noisy.latency.p99Ms, "lower"],
  ["p99 noisy ÷ quiet", (x) => x.noisy.p99Ratio, "lower"],
  ["flood frames sent (half malformed)", (x) => x.noisy.flood.sent, ""],
  ["flood frames refused (rate_limited)", (x) => x.noisy.flood.rateLimited, ""],
  ["others' messages lost", (x) => x.noisy.quiet.lost + x.noisy.noisy.lost, "zero"],
  [
    "other processes' CPU, quiet run (cores)",
    (x) => perSec(x.noisy.quiet.otherCpuSec, x.noisy.quiet.windowMs),
    "",
  ],
  [
    "hypervisor steal, quiet / noisy runs (cores)",
    (x) =>
      perSec(
        x.noisy.quiet.stealSec + x.noisy.noisy.stealSec,
        x.noisy.quiet.windowMs + x.noisy.noisy.windowMs,
      ),
    "",
  ],
];

/** Every figure of a run, Kabar next to the baseline. */
export function rows(r: BenchResult): Row[] {
  const out: Row[] = [];
  const add = (section: string, specs: readonly Spec[]) => {
    for (const [metric, get, better] of specs)
      out.push({ section, metric, kabar: get(r.kabar), baseline: get(r.baseline), better });
  };
  const en = (n: number) => n.toLocaleString("en-US");
  add(`connections (N = ${en(r.kabar.connections.n)} per repeat)`, CONNECTIONS);
  const f = r.kabar.fanout;
  f.runs.forEach((run, i) => {
    const specs = FANOUT_RUN.filter(
      ([m]) => run.mode === "closed" || !m.startsWith("deliveries per"),
    );
    const at =
      (get: (y: FanoutRun) => number): Get =>
      (x) => {
        const y = x.fanout.runs[i];
        return y ? get(y) : Number.NaN;
      };
    const section = `fan-out ${f.rooms} rooms × ${f.members}, ${f.senders} senders/room: ${run.label}`;
    add(
      section,
      specs.map(
        ([m, get, better]): Spec => [
          m,
          at(get),
          run.mode === "closed" && m === "delivered / s" ? "higher" : better,
        ],
      ),
    );
  });
  add(
    `churn (connect, auth, join, leave, disconnect; ${en(r.settings.churn.ms / 1000)} s per repeat)`,
    CHURN,
  );
  const n = r.kabar.noisy;
  add(
    `noisy neighbour (${n.rooms} rooms × ${n.members}, ${en(n.deliveriesPerSec)} deliveries/s)`,
    NOISY,
  );
  return out;
}

export function machineLine(r: BenchResult): string {
  const m = r.machine;
  const pin = r.pinned
    ? `server pinned to core ${r.serverCore}, clients to core ${r.clientCore} (taskset)`
    : "not pinned (taskset missing or one core)";
  return `${m.cores} cores (${m.cpuModel}), ${m.memoryGiB} GiB, Linux ${m.kernel}, Bun ${m.bun}, open files ${m.openFilesLimit ?? "?"} per process; ${pin}`;
}

function backgroundLine(r: BenchResult): string {
  if (r.background.length === 0) return "Background load was not checked in this profile.";
  const busy = r.background.filter((w) => !w.quiet);
  const waited = r.background.reduce((a, w) => a + w.waitedMs, 0) / 1000;
  const list = busy.map((w) => `${w.phase} (${w.otherCores} cores)`).join(", ");
  return `Before each measured phase the harness waited for other processes to go quiet (< 0.15 cores): ${waited.toFixed(1)} s waited; ${busy.length} of ${r.background.length} phases started on a busy machine${busy.length ? `: ${list}` : ""}.`;
}

function repeatsLine(r: BenchResult): string {
  const st = r.settings;
  return `Every scenario runs Kabar and the baseline in alternation (K, B, B, K, K, B, …), so neither always goes first: connections ${st.connections.repeats}, fan-out ${st.fanout.repeats}, churn ${st.churn.repeats} and noisy neighbour ${st.noisy.repeats} repeat(s) per server. Rates, latencies, time to open, RSS per connection and CPU per connection or per churn operation are medians of the repeats; counts (sockets opened, failures, messages lost) are sums; fan-out CPU per delivery is total server CPU over total deliveries. Every repeat is in the JSON file. Each connections repeat runs on a freshly started server (Kabar keeps its users in DATA_DIR), so RSS per connection is that repeat's own growth from a server holding no bench sockets. Each fan-out repeat also runs on a freshly started server with a fresh client process: one process pair can run 10–20% faster or slower than the next for no reason of its own, so the medians are over independent pairs. Churn repeats share one server per side: RSS is read before the first churn repeat and after the last, so a leak shows as growth.`;
}

const MET = (m: boolean | null) => (m === null ? "n/a" : m ? "yes" : "**no**");

export function markdown(r: BenchResult): string {
  const lines = [
    `# Kabar benchmark — ${r.profile} run, ${r.startedAt}`,
    "",
    `Machine: ${machineLine(r)}. The run took ${r.durationSec} s.`,
    "",
    "Baseline: a bare `Bun.serve` with Bun topics speaking the same protocol subset (`bench/baseline.ts`; no user lookup, no room registry, one topic per socket). Kabar ÷ baseline above 1 is better where higher is better, below 1 where lower is better. Server CPU is utime+stime from /proc/PID/stat (10 ms ticks); RSS is VmRSS from /proc/PID/status, read after a full garbage collection in the server (SIGUSR2 to `bench/gc-hook.ts`, preloaded into both servers by the harness) once it has stopped moving, so it counts what the server keeps rather than garbage not yet collected. The sockets of the connections, fan-out and noisy-neighbour scenarios use a minimal WebSocket client over `Bun.connect` (`bench/raw-ws.ts`: frames read as bytes, no event object or string per frame), so one client core keeps up with one server core; churn and the flooder use Bun's own `WebSocket`. Latency is measured by the client from a send timestamp carried in `content`, so it includes the client's own queueing (one process on one core receives every delivery). \"Other processes' CPU\" is machine-wide busy time (/proc/stat) minus the server and the measuring client; \"hypervisor steal\" is time the host gave this VM's cores to someone else (/proc/stat steal): latency tails follow it.",
    "",
    repeatsLine(r),
    "",
    backgroundLine(r),
    "",
    "## Targets (issue 3)",
    "",
    "| target | goal | measured | met |",
    "| --- | --- | --- | --- |",
    ...r.targets.map((t) => `| ${t.name} | ${t.target} | ${t.measured} | ${MET(t.met)} |`),
    "",
    "## Figures",
    "",
    "| scenario | metric | Kabar | baseline | Kabar ÷ baseline | better |",
    "| --- | --- | ---: | ---: | ---: | --- |",
  ];
  let last = "";
  for (const row of rows(r)) {
    const section = row.section === last ? "" : row.section;
    last = row.section;
    const x = row.baseline && row.better !== "" ? `${ratio(row.kabar, row.baseline)}×` : "";
    lines.push(
      `| ${section} | ${row.metric} | ${fmt(row.kabar)} | ${fmt(row.baseline)} | ${x} | ${row.better} |`,
    );
  }
  lines.push("", "![Kabar vs baseline](latest.svg)", "");
  return lines.join("\n");
}
