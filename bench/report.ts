// The Markdown summary of one run: machine, the settings of every server, targets, and every
// figure (Kabar, baseline, ratio) with its spread over the repeats (min–max).

import type { FanoutResult } from "./commands.ts";
import type { FanoutRun, FanoutScenario } from "./paired.ts";
import type { BenchResult, ServerResults } from "./result.ts";
import type { ChurnRun, ConnectionsResult, ConnectionsRun } from "./scenarios.ts";
import { clientBoundNote, defaultsRun, ratio } from "./targets.ts";

/** One figure: the headline value and the per-repeat values it came from. */
export interface Fig {
  value: number;
  reps: number[];
}

export interface Row {
  section: string;
  metric: string;
  kabar: Fig;
  baseline: Fig;
  /** Which way is better, for the reader ("" = context, not a score). */
  better: "higher" | "lower" | "zero" | "";
}

const NONE: Fig = { value: Number.NaN, reps: [] };

export function fmt(x: number): string {
  if (!Number.isFinite(x)) return "–";
  if (Number.isInteger(x)) return x.toLocaleString("en-US");
  const a = Math.abs(x);
  if (a >= 1000) return Math.round(x).toLocaleString("en-US");
  if (a >= 100) return x.toFixed(0);
  if (a >= 10) return x.toFixed(1);
  return x.toFixed(a >= 1 ? 2 : 3);
}

/** "1.84–2.01" over the repeats, "" for fewer than two. */
export function spread(f: Fig): string {
  const v = f.reps.filter((x) => Number.isFinite(x));
  if (v.length < 2) return "";
  const lo = fmt(Math.min(...v));
  const hi = fmt(Math.max(...v));
  return lo === hi ? lo : `${lo}–${hi}`;
}

const perSec = (sec: number, ms: number) => (ms > 0 ? (sec * 1000) / ms : 0);

// ---- connections

type ConnGet = (x: ConnectionsRun) => number | null;
const connFig = (c: ConnectionsResult | undefined, get: ConnGet, all?: ConnGet): Fig => {
  if (!c) return NONE;
  return { value: (all ?? get)(c) ?? Number.NaN, reps: c.repeats.map((x) => get(x) ?? Number.NaN) };
};
const openMsAll = (c: ConnectionsRun) =>
  ((c as ConnectionsResult).repeats ?? [c]).reduce((a, x) => a + x.openSec * 1000, 0);

const CONNECTIONS: [string, ConnGet, Row["better"], ConnGet?][] = [
  ["sockets opened and joined, all repeats", (x) => x.opened, "higher"],
  ["failed connections, all repeats", (x) => x.failed, "zero"],
  ["distinct users", (x) => x.users, ""],
  ["time to open all (s)", (x) => x.openSec, "lower"],
  ["connections / s", (x) => x.connPerSec, "higher"],
  ["server core busy while opening (cores)", (x) => x.serverCores, ""],
  ["server RSS per connection (KiB)", (x) => x.rssPerConnKiB, "lower"],
  ["server CPU per connection (µs)", (x) => x.cpuPerConnUs, "lower"],
  [
    "server log lines per connection",
    (x) => (x.logLines === null ? null : x.logLines / Math.max(1, x.opened)),
    "",
  ],
  ["one message to every socket: lost", (x) => x.pulse.lost, "zero"],
  [
    "other processes' CPU meanwhile (cores)",
    (x) => perSec(x.otherCpuSec, x.openSec * 1000),
    "",
    (x) => perSec(x.otherCpuSec, openMsAll(x)),
  ],
  [
    "hypervisor steal, whole VM (cores)",
    (x) => perSec(x.stealSec, x.openSec * 1000),
    "",
    (x) => perSec(x.stealSec, openMsAll(x)),
  ],
];

function connectionRows(
  section: string,
  k: ConnectionsResult | undefined,
  b: ConnectionsResult | undefined,
): Row[] {
  const bound = clientBoundNote(
    [...(k?.repeats ?? []), ...(b?.repeats ?? [])].map((x) => x.serverCores),
  );
  return CONNECTIONS.map(([metric, get, better, all]) => ({
    section,
    metric: metric === "connections / s" && bound ? `connections / s (${bound})` : metric,
    kabar: connFig(k, get, all),
    baseline: connFig(b, get, all),
    better,
  }));
}

// ---- fan-out

type RunGet = (y: FanoutResult) => number;
const runFig = (run: FanoutRun | undefined, get: RunGet): Fig =>
  run ? { value: get(run), reps: run.repeats.map(get) } : NONE;
const serverCores = (y: FanoutResult) => perSec(y.serverCpuSec, y.windowMs);

const FANOUT: [string, RunGet, Row["better"], "closed" | "rate" | "both"][] = [
  ["delivered / s", (y) => y.deliveriesPerSec, "", "both"],
  [
    "deliveries per server-CPU-second",
    (y) => (y.serverCpuSec > 0 ? Math.round(y.windowDeliveries / y.serverCpuSec) : 0),
    "higher",
    "closed",
  ],
  [
    "server CPU per delivery (µs)",
    (y) => (y.windowDeliveries ? (y.serverCpuSec * 1e6) / y.windowDeliveries : 0),
    "lower",
    "both",
  ],
  ["server core busy (cores)", serverCores, "", "both"],
  ["latency p50 (ms)", (y) => y.latency.p50Ms, "lower", "both"],
  ["latency p95 (ms)", (y) => y.latency.p95Ms, "lower", "both"],
  ["latency p99 (ms)", (y) => y.latency.p99Ms, "lower", "both"],
  ["latency max, all repeats (ms)", (y) => y.latency.maxMs, "lower", "both"],
  ["latency samples", (y) => y.latency.count, "", "both"],
  ["lost", (y) => y.lost, "zero", "both"],
  ["frames refused (rate_limited)", (y) => y.rateLimited ?? 0, "zero", "both"],
  ["other error frames", (y) => y.errorFrames - (y.rateLimited ?? 0), "zero", "both"],
  ["bot answers received", (y) => y.botFrames ?? 0, "", "both"],
  ["client CPU (cores)", (y) => perSec(y.clientCpuSec, y.windowMs), "", "both"],
  ["other processes' CPU (cores)", (y) => perSec(y.otherCpuSec, y.windowMs), "", "both"],
  ["hypervisor steal, whole VM (cores)", (y) => perSec(y.stealSec, y.windowMs), "", "both"],
];

function fanoutRows(section: string, k: FanoutRun | undefined, b: FanoutRun | undefined): Row[] {
  const mode = (k ?? b)?.mode ?? "rate";
  const bound = clientBoundNote(
    [...(k?.repeats ?? []), ...(b?.repeats ?? [])].map((y) => serverCores(y)),
  );
  return FANOUT.filter(([, , , m]) => m === "both" || m === mode).map(([metric, get, better]) => ({
    section,
    metric:
      metric === "delivered / s" && mode === "closed"
        ? `delivered / s${bound ? ` (${bound})` : ""}`
        : metric,
    kabar: runFig(k, get),
    baseline: runFig(b, get),
    better: metric === "delivered / s" && mode === "closed" ? "higher" : better,
  }));
}

/** A run's shape for its section title. */
function runTitle(f: FanoutScenario | undefined, run: FanoutRun): string {
  const who =
    run.load === "shared users"
      ? `${run.users} users`
      : `one user per socket${run.suffix ? ", bot answering every message" : ""}`;
  const rate =
    run.perSenderMsgPerSec === null ? "" : `, ${fmt(run.perSenderMsgPerSec)} msg/s per sender`;
  return `fan-out ${f?.rooms ?? "?"} rooms × ${f?.members ?? "?"} (${who}), ${run.senders} senders/room${rate}: ${run.label}`;
}

// ---- churn, noisy

type ChurnGet = (x: ChurnRun) => number;
const churnFig = (x: ServerResults, get: ChurnGet): Fig =>
  x.churn ? { value: get(x.churn), reps: x.churn.repeats.map(get) } : NONE;
const one = (v: number | undefined): Fig => ({ value: v ?? Number.NaN, reps: [] });

function churnRows(section: string, k: ServerResults, b: ServerResults): Row[] {
  const specs: [string, (x: ServerResults) => Fig, Row["better"]][] = [
    ["operations / s", (x) => churnFig(x, (c) => c.opsPerSec), "higher"],
    ["server CPU per operation (µs)", (x) => churnFig(x, (c) => c.cpuPerOpUs), "lower"],
    ["server core busy (cores)", (x) => churnFig(x, (c) => c.serverCores), ""],
    ["server RSS before the first repeat (MiB)", (x) => one(x.churn?.rssBeforeMiB), ""],
    ["server RSS after the last repeat (MiB)", (x) => one(x.churn?.rssAfterMiB), "lower"],
    ["failed operations, all repeats", (x) => churnFig(x, (c) => c.failed), "zero"],
    [
      "other processes' CPU meanwhile (cores)",
      (x) => churnFig(x, (c) => perSec(c.otherCpuSec, c.ms)),
      "",
    ],
    ["hypervisor steal, whole VM (cores)", (x) => churnFig(x, (c) => perSec(c.stealSec, c.ms)), ""],
  ];
  return specs.map(([metric, get, better]) => ({
    section,
    metric,
    kabar: get(k),
    baseline: get(b),
    better,
  }));
}

function noisyRows(section: string, k: ServerResults, b: ServerResults): Row[] {
  const p99 = (run: FanoutRun | undefined) => runFig(run, (y) => y.latency.p99Ms);
  const ratioFig = (x: ServerResults): Fig => {
    const n = x.noisy;
    if (!n) return NONE;
    const reps = n.quiet.repeats.map((q, i) => {
      const y = n.noisy.repeats[i];
      return y && q.latency.p99Ms > 0 ? y.latency.p99Ms / q.latency.p99Ms : Number.NaN;
    });
    return { value: n.p99Ratio ?? Number.NaN, reps };
  };
  const specs: [string, (x: ServerResults) => Fig, Row["better"]][] = [
    ["others' p99, quiet (ms)", (x) => p99(x.noisy?.quiet), "lower"],
    ["others' p99, beside the flooder (ms)", (x) => p99(x.noisy?.noisy), "lower"],
    ["p99 noisy ÷ quiet", ratioFig, "lower"],
    [
      "others' latency max, all repeats (ms)",
      (x) => runFig(x.noisy?.noisy, (y) => y.latency.maxMs),
      "lower",
    ],
    ["flood frames sent (half malformed)", (x) => one(x.noisy?.flood.sent), ""],
    ["flood frames refused (rate_limited)", (x) => one(x.noisy?.flood.rateLimited), ""],
    [
      "others' messages lost",
      (x) => one(x.noisy ? x.noisy.quiet.lost + x.noisy.noisy.lost : undefined),
      "zero",
    ],
    [
      "other processes' CPU, quiet run (cores)",
      (x) => runFig(x.noisy?.quiet, (y) => perSec(y.otherCpuSec, y.windowMs)),
      "",
    ],
    [
      "hypervisor steal, beside the flooder (cores)",
      (x) => runFig(x.noisy?.noisy, (y) => perSec(y.stealSec, y.windowMs)),
      "",
    ],
  ];
  return specs.map(([metric, get, better]) => ({
    section,
    metric,
    kabar: get(k),
    baseline: get(b),
    better,
  }));
}

/** Every figure of a run, Kabar next to the baseline. */
export function rows(r: BenchResult): Row[] {
  const en = (n: number) => n.toLocaleString("en-US");
  const st = r.settings;
  const k = r.kabar;
  const b = r.baseline;
  const d = r.kabarDefaults;
  const n = en(st.connections.n);
  const out: Row[] = [
    ...connectionRows(
      `connections, one socket per user (${n} sockets of ${n} users per repeat; the targets apply here): Kabar tuned`,
      k.connections,
      b.connections,
    ),
    ...connectionRows(
      `connections, shared users (${n} sockets on ${st.users} users per repeat): Kabar tuned; baseline as above`,
      k.connectionsShared,
      b.connections,
    ),
    ...connectionRows(
      `connections, one socket per user: Kabar on DEFAULT settings; baseline as above`,
      d.connections,
      b.connections,
    ),
  ];
  const runs = k.fanout?.runs ?? b.fanout?.runs.filter((y) => y.load === "shared users") ?? [];
  for (const run of runs) {
    const same = (y: FanoutRun) => y.load === run.load && y.label === run.label;
    out.push(
      ...fanoutRows(
        `${runTitle(k.fanout ?? b.fanout, run)}: Kabar tuned`,
        k.fanout?.runs.find(same),
        b.fanout?.runs.find(same),
      ),
    );
  }
  const dk = defaultsRun(d);
  const db = defaultsRun(b);
  const dr = dk ?? db;
  if (dr)
    out.push(
      ...fanoutRows(
        `${runTitle(d.fanout ?? b.fanout, dr)}: Kabar on DEFAULT settings`,
        dk,
        db?.label === dr.label ? db : undefined,
      ),
    );
  else out.push(...fanoutRows("fan-out on DEFAULT settings: not measured", undefined, undefined));
  out.push(
    ...churnRows(
      `churn (connect, auth, join, leave, disconnect; ${st.users} users, ${en(st.churn.ms / 1000)} s per repeat)`,
      k,
      b,
    ),
  );
  const nz = st.noisy;
  out.push(
    ...noisyRows(
      `noisy neighbour (${nz.rooms} rooms × ${nz.members}, ${en(nz.deliveriesPerSec)} deliveries/s; rate limit ${nz.capacity}, ${nz.refillPerSec}/s)`,
      k,
      b,
    ),
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
  return `Server kinds take turns (two alternate K, B, B, K, …; more rotate, repeat k starting with the k-th kind, so each takes each place once): connections ${st.connections.repeats} repeats per kind (Kabar tuned one socket per user, Kabar tuned shared users, Kabar on default settings, baseline), fan-out ${st.fanout.repeats} (Kabar tuned, baseline, Kabar on default settings), churn ${st.churn.repeats} and noisy neighbour ${st.noisy.repeats} (Kabar, baseline). Headline rates, latency percentiles, time to open, RSS and CPU per connection or per churn operation are medians of the repeats; the range next to each is min–max over the repeats; the latency max is the max of every repeat, not a median; counts (sockets opened, failures, messages lost) are sums; fan-out CPU per delivery is total server CPU over total deliveries. Every repeat is in the JSON file. Each connections and fan-out repeat runs on a freshly started server (fan-out also with a fresh client process): one process pair can run 10–20% faster or slower than the next for no reason of its own, so the medians are over independent pairs. Churn and noisy-neighbour repeats share one server per side: churn RSS is read before the first repeat and after the last, so a leak shows as growth.`;
}

function settingsTable(r: BenchResult): string[] {
  const env = (e: Record<string, string>) =>
    Object.entries(e)
      .map(([k, v]) => `\`${k}=${v}\``)
      .join(" ");
  const d = r.settings.defaults;
  const dr = defaultsRun(r.kabarDefaults) ?? defaultsRun(r.baseline);
  return [
    "## Settings of every row",
    "",
    "| server | program | environment | rows |",
    "| --- | --- | --- | --- |",
    ...r.servers.map((s) => `| ${s.name} | \`${s.program}\` | ${env(s.env)} | ${s.rows} |`),
    "",
    `\`kabarDefaults\` sets only what any deployment must (secret, data folder, superuser) and \`CONNECT_RATE_PER_IP=0\` (every load client comes from a few loopback addresses); everything else is Kabar's default: \`LOG_LEVEL=info\`, \`BOT_ENABLED=true\`, rate limit 100 frames per user with 1.67/s refill, \`MAX_CONNECTIONS_PER_USER=20\`, \`MAX_ROOMS_PER_USER=50\`, \`MAX_ROOMS=10000\`, \`ROOM_EMPTY_TTL_SECONDS=300\`. Its fan-out runs at ${fmt(d.rate.deliveriesPerSec)} deliveries/s from ${dr?.senders ?? "?"} senders per room, ${fmt(dr?.perSenderMsgPerSec ?? Number.NaN)} message/s per sender (one user each), under the refill rate, so the rate limit should refuse nothing (refused frames are counted and are a target miss); every message ends in " halo", so the bot answers each one as it would a person's. Rooms are created 40 per user (under \`MAX_ROOMS_PER_USER\`). The baseline runs the same load for comparison.`,
    "",
  ];
}

const MET = (m: boolean | null) => (m === null ? "n/a" : m ? "yes" : "**no**");

export function markdown(r: BenchResult, chart = "latest.svg"): string {
  const lines = [
    `# Kabar benchmark — ${r.profile} run, ${r.startedAt}`,
    "",
    `Machine: ${machineLine(r)}. The run took ${r.durationSec} s.`,
    "",
    "Baseline: a bare `Bun.serve` with Bun topics speaking the same protocol subset (`bench/baseline.ts`; no user lookup, no room registry, no logging, no bot). It is the cheapest floor: the upgrade is a Bun native route like Kabar's, the token is read from the query without `new URL` and checked as Kabar's `src/auth.ts` does (a cache of header segments already seen, one HMAC key set up once and copied per token, constant-time compare). Kabar ÷ baseline above 1 is better where higher is better, below 1 where lower is better. Server CPU is utime+stime from /proc/PID/stat (10 ms ticks); \"server core busy\" is that CPU over the phase's time (1 = the server's whole core): where it is well below 1 the closed-loop rate is set by the load clients (one core for all of them), so its ratio says more about the client than the server, and CPU per connection or per delivery is the fair comparison. RSS is VmRSS from /proc/PID/status, read after a full garbage collection in the server (SIGUSR2 to `bench/gc-hook.ts`, preloaded into both servers by the harness) once it has stopped moving. Users: the one-socket-per-user shapes use users written straight into Kabar's SQLite file before it starts (one transaction, one argon2 hash; `bench/users.ts`), each upgrade then finds a user that is not in Kabar's memory yet; the shared shape puts every socket on a few users (a warm user cache, shared per-user state). The sockets of the connections, fan-out and noisy-neighbour scenarios use a minimal WebSocket client over `Bun.connect` (`bench/raw-ws.ts`); churn and the flooder use Bun's own `WebSocket`. Latency is measured by the client from a send timestamp carried in `content`, so it includes the client's own queueing. \"Other processes' CPU\" is machine-wide busy time (/proc/stat) minus the server and the measuring client; \"hypervisor steal\" is time the host gave this VM's cores to someone else: latency tails follow it.",
    "",
    repeatsLine(r),
    "",
    backgroundLine(r),
    "",
    ...settingsTable(r),
  ];
  if (r.failures.length > 0)
    lines.push(
      "## Phases that failed (their figures are missing; the targets count them as misses)",
      "",
      ...r.failures.map((f) => `- ${f.phase}: ${f.error}`),
      "",
    );
  lines.push(
    "## Targets (issue 3)",
    "",
    "Missing data never passes: a scenario or repeat that did not run, a window without latency samples, no CPU reading, a GC hook that did not answer, failed connections — each is named and the target is **no**. n/a only where this profile does not define the target.",
    "",
    "| target | goal | measured | met |",
    "| --- | --- | --- | --- |",
    ...r.targets.map((t) => `| ${t.name} | ${t.target} | ${t.measured} | ${MET(t.met)} |`),
    "",
    "## Figures",
    "",
    "Each figure: the headline (median, sum or max as stated) and its range over the repeats (min–max).",
    "",
    "| scenario | metric | Kabar | Kabar range | baseline | baseline range | Kabar ÷ baseline | better |",
    "| --- | --- | ---: | ---: | ---: | ---: | ---: | --- |",
  );
  let last = "";
  for (const row of rows(r)) {
    const section = row.section === last ? "" : row.section;
    last = row.section;
    const kv = row.kabar.value;
    const bv = row.baseline.value;
    const x =
      Number.isFinite(kv) && Number.isFinite(bv) && bv !== 0 && row.better !== ""
        ? `${ratio(kv, bv)}×`
        : "";
    lines.push(
      `| ${section} | ${row.metric} | ${fmt(kv)} | ${spread(row.kabar)} | ${fmt(bv)} | ${spread(row.baseline)} | ${x} | ${row.better} |`,
    );
  }
  lines.push("", `![Kabar vs baseline](${chart})`, "");
  return lines.join("\n");
}
