// The benchmark harness (bench/) in miniature, so it never rots: a tiny run against a real Kabar
// and the baseline, checked for shape and for zero lost messages. Timings are never asserted.
import { expect, test } from "bun:test";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { runBench } from "../bench/run.ts";

test.skipIf(process.platform !== "linux")(
  "bench harness: a tiny run reports every scenario for Kabar and the baseline, 0 lost",
  async () => {
    const out = mkdtempSync(join(tmpdir(), "kabar-bench-test-"));
    try {
      const { result, files } = await runBench({
        profile: "tiny",
        outDir: out,
        writeLatest: true,
        progress: false,
      });
      expect(files).toHaveLength(3);
      for (const f of files) expect(existsSync(f)).toBe(true);
      expect(result.machine.cores).toBeGreaterThan(0);
      expect(result.machine.bun).toBe(Bun.version);
      for (const r of [result.kabar, result.baseline]) {
        expect(r.connections.failed).toBe(0);
        expect(r.connections.opened).toBe(r.connections.n);
        expect(r.connections.pulse.received).toBe(r.connections.n);
        expect(r.connections.pulse.lost).toBe(0);
        expect(r.fanout.runs).toHaveLength(1 + result.settings.fanout.rates.length);
        for (const run of r.fanout.runs) {
          expect(run.sent).toBeGreaterThan(0);
          expect(run.received).toBe(run.expected);
          expect(run.lost).toBe(0);
          expect(run.duplicates).toBe(0);
          expect(run.unexpectedCloses).toBe(0);
          expect(run.latency.count).toBeGreaterThan(0);
        }
        expect(r.churn.ops).toBeGreaterThan(0);
        expect(r.churn.failed).toBe(0);
        expect(r.noisy.quiet.lost).toBe(0);
        expect(r.noisy.noisy.lost).toBe(0);
        expect(r.noisy.flood.sent).toBeGreaterThan(0);
        expect(r.noisy.flood.rateLimited).toBeGreaterThan(0);
      }
      expect(result.targets.find((t) => t.name.startsWith("messages lost"))?.met).toBe(true);
      const saved = JSON.parse(readFileSync(files[0] as string, "utf8")) as typeof result;
      expect(saved.kabar.fanout.runs[0]?.lost).toBe(0);
      expect(readFileSync(files[1] as string, "utf8")).toContain(
        "| target | goal | measured | met |",
      );
      const chart = readFileSync(files[2] as string, "utf8");
      expect(chart.startsWith("<svg")).toBe(true);
      expect(chart.trimEnd().endsWith("</svg>")).toBe(true);
    } finally {
      rmSync(out, { recursive: true, force: true });
    }
  },
  30_000,
);
