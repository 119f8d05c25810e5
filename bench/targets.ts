// Issue 3's targets, checked against one run's figures.
import type { BenchResult, ServerResults, TargetCheck } from "./result.ts";
import { round } from "./stats.ts";

/** Kabar ÷ baseline, or 0 when the baseline figure is 0. */
export const ratio = (k: number, b: number): number => (b === 0 ? 0 : round(k / b, 2));

/** "median of 3: 98–113" (the range of the repeats), or "" for a single repeat. */
function spread(values: number[]): string {
  if (values.length < 2) return "";
  return `median of ${values.length}: ${Math.min(...values)}–${Math.max(...values)}; `;
}

/** Every message Kabar should have delivered and did not, across all scenarios. */
export function totalLost(r: ServerResults): number {
  return (
    r.connections.pulse.lost +
    r.fanout.runs.reduce((a, x) => a + x.lost, 0) +
    r.noisy.quiet.lost +
    r.noisy.noisy.lost
  );
}

export function checkTargets(
  r: Pick<BenchResult, "kabar" | "baseline" | "settings">,
): TargetCheck[] {
  const k = r.kabar;
  const b = r.baseline;
  const f = r.settings.fanout;
  const at10x100 = f.rooms === 10 && f.members === 100;
  const closed = (x: ServerResults) => x.fanout.runs.find((run) => run.mode === "closed");
  const rate = (x: ServerResults, perSec: number) =>
    x.fanout.runs.find((run) => run.targetDeliveriesPerSec === perSec);
  const kr = k.connections.repeats;
  const connRatio = ratio(k.connections.connPerSec, b.connections.connPerSec);
  const out: TargetCheck[] = [
    {
      name: "server RSS per idle authenticated connection",
      target: "≤ 2.5 KiB",
      measured: `${k.connections.rssPerConnKiB} KiB (${spread(kr.map((x) => x.rssPerConnKiB))}baseline ${b.connections.rssPerConnKiB})`,
      met: k.connections.rssPerConnKiB <= 2.5,
    },
    {
      name: "server CPU per connection (handshake, token, user, welcome, join)",
      target: "≤ 100 µs",
      measured: `${k.connections.cpuPerConnUs} µs (${spread(kr.map((x) => x.cpuPerConnUs))}baseline ${b.connections.cpuPerConnUs})`,
      met: k.connections.cpuPerConnUs <= 100,
    },
    {
      name: "connections opened per second",
      target: "≥ 0.75× baseline",
      measured: `${connRatio}× (${k.connections.connPerSec} vs ${b.connections.connPerSec}/s)`,
      met: connRatio >= 0.75,
    },
  ];
  const kc = closed(k);
  const bc = closed(b);
  if (kc && bc) {
    const x = ratio(kc.deliveriesPerCpuSec, bc.deliveriesPerCpuSec);
    out.push({
      name: `deliveries per server-CPU-second, ${f.rooms} rooms × ${f.members} members`,
      target: "≥ 0.9× baseline at 10 × 100",
      measured: `${x}× (${kc.deliveriesPerCpuSec} vs ${bc.deliveriesPerCpuSec})`,
      met: at10x100 ? x >= 0.9 : null,
    });
  }
  for (const [perSec, limit] of [
    [20_000, 2],
    [50_000, 3],
  ] as const) {
    const run = rate(k, perSec);
    out.push({
      name: `p99 latency at ~${perSec / 1000}k deliveries/s`,
      target: `≤ ${limit} ms`,
      measured: run
        ? `${run.latency.p99Ms} ms (baseline ${rate(b, perSec)?.latency.p99Ms ?? "n/a"})`
        : "not run in this profile",
      met: run && at10x100 ? run.latency.p99Ms <= limit : null,
    });
  }
  const lost = totalLost(k);
  out.push({
    name: "messages lost, every scenario",
    target: "0",
    measured: `${lost} (baseline ${totalLost(b)})`,
    met: lost === 0,
  });
  out.push({
    name: "noisy neighbour: others' p99 vs the quiet run",
    target: "≤ 2×",
    measured: `${k.noisy.p99Ratio}× (${k.noisy.quiet.latency.p99Ms} → ${k.noisy.noisy.latency.p99Ms} ms; baseline ${b.noisy.p99Ratio}×)`,
    met: k.noisy.p99Ratio <= 2,
  });
  return out;
}
