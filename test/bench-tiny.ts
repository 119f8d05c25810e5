// What the benchmark smoke tests (test/bench-cluster.test.ts, test/bench-history.test.ts) share:
// whether the Redis-backed runs can go here, and one tiny run in a throwaway output folder checked
// for no failure and every file written, with nothing missing in its targets.
import { expect } from "bun:test";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { redisInstalled } from "../bench/redis.ts";
import type { Failure, TargetCheck } from "../bench/result.ts";

/** Linux with redis-server (always in CI); warns that `what`'s smoke runs are skipped if not. */
export function redisRuns(what: string): boolean {
  const runs = process.platform === "linux" && (redisInstalled() || process.env.CI === "true");
  if (!runs) console.warn(`skip: redis-server not found; the ${what} bench smoke runs are skipped`);
  return runs;
}

/**
 * Runs `run` with a fresh output folder (`kabar-bench-<name>-test-…`), then checks: no phase
 * failed, every file listed exists, the latest files after the first are `latest` (if given).
 * `check` then looks at the result; the folder is removed whatever happens. Last, every target is
 * measured (nothing MISSING) and none missed.
 */
export async function tinyRun<R extends { failures: Failure[]; targets: TargetCheck[] }>(
  name: string,
  run: (outDir: string) => Promise<{ result: R; files: string[] }>,
  check: (result: R) => void,
  latest?: string[],
): Promise<void> {
  const out = mkdtempSync(join(tmpdir(), `kabar-bench-${name}-test-`));
  try {
    const { result, files } = await run(out);
    expect(result.failures).toEqual([]);
    for (const f of files) expect(existsSync(f)).toBe(true);
    if (latest) expect(files.map((f) => f.slice(out.length + 1)).slice(1)).toEqual(latest);
    check(result);
    for (const t of result.targets) {
      expect(t.measured).not.toContain("MISSING");
      expect(t.met).not.toBe(false);
    }
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
}
