// src/fd-table.ts: the open-files limit as /proc states it, and growing the table in this process.
import { describe, expect, test } from "bun:test";
import { readdirSync, readFileSync } from "node:fs";
import { openFilesLimit, preallocateFds } from "../src/fd-table.ts";

const LIMITS = `Limit                     Soft Limit           Hard Limit           Units
Max cpu time              unlimited            unlimited            seconds
Max open files            20000                40000                files
Max locked memory         8388608              8388608              bytes
`;

describe("openFilesLimit", () => {
  test("reads the soft limit of Max open files", () => {
    expect(openFilesLimit(LIMITS)).toBe(20000);
  });
  test("unlimited or missing: undefined", () => {
    expect(openFilesLimit(LIMITS.replace("20000", "unlimited"))).toBeUndefined();
    expect(openFilesLimit("Limit  Soft Limit\n")).toBeUndefined();
  });
});

describe("preallocateFds", () => {
  test("0 does nothing", () => {
    expect(preallocateFds(0)).toBeUndefined();
  });

  test.if(process.platform === "linux")(
    "grows this process's table to the count asked and leaves no descriptor open",
    () => {
      const size = () =>
        Number(/^FDSize:\s+(\d+)/m.exec(readFileSync("/proc/self/status", "utf8"))?.[1]);
      const open = () => readdirSync("/proc/self/fd").length;
      const before = open();
      const want = Math.max(size() + 1, 2048);
      const done = preallocateFds(want);
      expect(done).toBeDefined();
      expect(done?.top).toBe(want - 1);
      expect(size()).toBeGreaterThanOrEqual(want);
      expect(open()).toBe(before);
    },
  );

  test.if(process.platform === "linux")("stops short of the open-files limit", () => {
    const limit = openFilesLimit() ?? 1024;
    const done = preallocateFds(limit + 1000);
    expect(done).toBeDefined();
    expect(done?.top ?? limit).toBeLessThan(limit);
  });
});
