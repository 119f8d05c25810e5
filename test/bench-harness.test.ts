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
      const s = result.settings;
      for (const r of [result.kabar, result.baseline]) {
        expect(r.connections.repeats).toHaveLength(s.connections.repeats);
        expect(r.connections.attempted).toBe(s.connections.n * s.connections.repeats);
        expect(r.connections.failed).toBe(0);
        expect(r.connections.opened).toBe(r.connections.attempted);
        expect(r.connections.pulse.received).toBe(r.connections.attempted);
        expect(r.connections.pulse.lost).toBe(0);
        // RSS is read after a full GC in the server (bench/gc-hook.ts): the hook must answer.
        expect(r.connections.rssAfterGc).toBe(true);
        for (const rep of r.connections.repeats) {
          expect(rep.n).toBe(s.connections.n);
          expect(rep.opened).toBe(rep.n);
          expect(rep.pulse.lost).toBe(0);
        }
        expect(r.fanout.runs).toHaveLength(1 + result.settings.fanout.rates.length);
        for (const run of r.fanout.runs) {
          expect(run.sent).toBeGreaterThan(0);
          expect(run.received).toBe(run.expected);
          expect(run.lost).toBe(0);
          expect(run.duplicates).toBe(0);
          expect(run.unexpectedCloses).toBe(0);
          expect(run.latency.count).toBeGreaterThan(0);
        }
        expect(r.churn.repeats).toHaveLength(s.churn.repeats);
        expect(r.churn.ops).toBeGreaterThan(0);
        expect(r.churn.failed).toBe(0);
        expect(r.churn.rssAfterGc).toBe(true);
        expect(r.noisy.quiet.lost).toBe(0);
        expect(r.noisy.noisy.lost).toBe(0);
        expect(r.noisy.flood.sent).toBeGreaterThan(0);
        expect(r.noisy.flood.rateLimited).toBeGreaterThan(0);
      }
      expect(result.targets.find((t) => t.name.startsWith("messages lost"))?.met).toBe(true);
      const saved = JSON.parse(readFileSync(files[0] as string, "utf8")) as typeof result;
      expect(saved.kabar.fanout.runs[0]?.lost).toBe(0);
      expect(saved.kabar.connections.repeats).toHaveLength(s.connections.repeats);
      const md = readFileSync(files[1] as string, "utf8");
      expect(md).toContain("| target | goal | measured | met |");
      expect(md).toContain("alternation");
      const chart = readFileSync(files[2] as string, "utf8");
      expect(chart.startsWith("<svg")).toBe(true);
      expect(chart.trimEnd().endsWith("</svg>")).toBe(true);
    } finally {
      rmSync(out, { recursive: true, force: true });
    }
  },
  30_000,
);
