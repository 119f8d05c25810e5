// The faults bench (bench/faults.ts) in miniature, so it never rots (about 20 s): 2 nodes with a
// redis-server and a PostgreSQL of the bench's own (initdb into a temp folder on a free port,
// never the machine's), 20 steady sockets; Redis SIGKILLed and started again, PostgreSQL stopped
// and started again, then a tiny reconnect storm (a node SIGKILLed). Asserted: every fault
// recovered, 0 lost and 0 duplicates for the sockets that stayed connected, logins refused with
// 503 (not a crash) while PostgreSQL was down; and the target checks on made-up results.
import { expect, setDefaultTimeout, test } from "bun:test";
import {
  checkFaultsTargets,
  FAULTS_PROFILES,
  type FaultsResult,
  runFaults,
} from "../bench/faults.ts";
import { pgBin } from "../bench/pg.ts";
import { redisRuns, tinyRun } from "./bench-tiny.ts";

setDefaultTimeout(90_000);

const runs = redisRuns("faults") && (pgBin() !== null || process.env.CI === "true");
if (redisRuns("faults") && !runs)
  console.warn("skip: PostgreSQL (initdb) not found; the faults bench smoke run is skipped");

test.skipIf(!runs)(
  "bench:faults tiny run: Redis, PostgreSQL and a node fail under load; 0 lost, 0 duplicates",
  async () => {
    await tinyRun(
      "faults",
      (outDir) => runFaults({ profile: "tiny", outDir, writeLatest: true, progress: false }),
      (r) => {
        expect(r.runs.map((x) => x.fault)).toEqual(["redis", "postgres"]);
        for (const run of r.runs) {
          expect(run.recoverMs).not.toBeNull();
          expect(run.collect?.closed).toBe(0);
          expect(run.collect?.lost).toBe(0);
          expect(run.collect?.duplicates).toBe(0);
          expect(run.collect?.sent).toBeGreaterThan(0);
        }
        const pg = r.runs[1];
        expect(Object.keys(pg?.loginsDown ?? {}).every((s) => s === "503")).toBe(true);
        expect(r.storm?.collect?.holes).toBe(0);
        expect(r.storm?.collect?.duplicates).toBe(0);
      },
      ["faults-latest-tiny.json", "faults-latest-tiny.md"],
    );
  },
);

test("checkFaultsTargets: missing runs fail", () => {
  const empty = {
    settings: FAULTS_PROFILES.tiny,
    runs: [],
    failures: [],
  } as unknown as FaultsResult;
  expect(checkFaultsTargets(empty).map((t) => t.met)).toEqual([false, false, false, false, false]);
});
