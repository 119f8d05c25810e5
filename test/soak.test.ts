// The soak (bench/soak.ts) at CI scale, on a real server: `npm run soak:quick` — 1,000 steady
// sockets in 20 rooms, 1,000 deliveries/s and 50 connects + disconnects per second for 20 s
// (about 35 s in all). Asserted: RSS after a forced GC flat (the mean of seconds 14–20 within 15%
// of seconds 4–10: a looser bound than the full run's 5% over minutes 2 and 10, for a run this
// short), every map and set size, the pending timers and the open fds back to where they were
// once the load stopped, 0 lost / repeated / unanswered, the rates reached. And the judging on
// made-up samples: a size that grew, a missing sample or a loss fails.
import { expect, setDefaultTimeout, test } from "bun:test";
import {
  checkSoakTargets,
  grown,
  runSoak,
  SOAK_PROFILES,
  type SoakResult,
  type SoakSample,
} from "../bench/soak.ts";
import { tinyRun } from "./bench-tiny.ts";

setDefaultTimeout(60_000);

test("soak:quick — flat RSS, no growth in sizes, timers or fds, 0 lost, on a real server", async () => {
  await tinyRun(
    "soak",
    (outDir) => runSoak({ profile: "quick", outDir, writeLatest: true, progress: false }),
    (r) => {
      expect(r.targets.map((t) => t.met)).toEqual([true, true, true, true, true]);
      const loads = r.samples.filter((s) => s.tag === "load");
      expect(loads.length).toBe(SOAK_PROFILES.quick.durationMs / SOAK_PROFILES.quick.sampleMs);
      expect(loads.every((s) => s.gc && s.timers !== null)).toBe(true);
      for (const c of r.collect ?? []) {
        expect(c.lost).toBe(0);
        expect(c.duplicates).toBe(0);
        expect(c.closed).toBe(0);
      }
    },
    ["soak-latest-quick.json", "soak-latest-quick.md"],
  );
});

const sample = (sizes: Record<string, number>, timers = 2, openFds = 10): SoakSample => ({
  t: 0,
  tag: "before",
  rssBytes: 50 * 2 ** 20,
  openFds,
  timers,
  gc: true,
  sizes,
});

test("grown: equal or smaller sizes pass; a grown map, timer or fd count fails; caches are held to caps", () => {
  const caps = { historySize: 100, cacheGrowth: 10 };
  const a = sample({ "hub.user_slots": 5, "registry.rooms": 3, "history.rooms": 2 });
  expect(grown(a, sample({ ...a.sizes }), caps)).toEqual([]);
  expect(grown(a, sample({ ...a.sizes, "hub.user_slots": 6 }), caps)).toEqual([
    "hub.user_slots 5 → 6",
  ]);
  expect(grown(a, sample({ ...a.sizes, "hub.user_slots": 4 }, 1), caps)).toEqual([]);
  expect(grown(a, sample({ ...a.sizes }, 3), caps)).toEqual(["timers 2 → 3"]);
  expect(grown(a, sample({ ...a.sizes }, 2, 13), caps)).toEqual(["open fds 10 → 13"]);
  expect(grown(a, sample({ ...a.sizes, "history.rooms": 3 }), caps)).toEqual([]);
  expect(grown(a, sample({ ...a.sizes, "history.rooms": 4 }), caps)).toHaveLength(1);
  expect(grown(a, sample({ ...a.sizes, "history.messages": 201 }), caps)).toHaveLength(1);
  expect(grown(a, sample({ ...a.sizes, "users.cached_users": 11 }), caps)).toHaveLength(1);
});

test("checkSoakTargets: missing data and losses fail", () => {
  const p = { ...SOAK_PROFILES.quick, sockets: 1000 };
  const empty = { settings: p, samples: [], latency: [], failures: [] } as unknown as SoakResult;
  const t = checkSoakTargets(empty);
  expect(t.every((x) => x.met === false)).toBe(true);
  const lossy = {
    ...empty,
    collect: [0, 1].map(() => ({
      sockets: 500,
      closed: 0,
      sent: 10,
      refused: {},
      echoed: 10,
      unanswered: 0,
      deliveries: 500,
      lost: 1,
      membersWithLoss: 1,
      losses: [{ member: 3, room: 0, port: 0, epoch: 0, missed: 1, top: 10 }],
      duplicates: 0,
      maxEpochs: 1,
      errorFrames: 0,
      errors: [],
    })),
  } as SoakResult;
  expect(checkSoakTargets(lossy)[2]?.met).toBe(false);
});
