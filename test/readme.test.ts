// The README is the front door: its settings table and commands must stay true.
import { expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { checkListing } from "./spec-settings.ts";

const readme = readFileSync(new URL("../README.md", import.meta.url), "utf8");
const pkg = JSON.parse(readFileSync(new URL("../package.json", import.meta.url), "utf8")) as {
  scripts: Record<string, string>;
};

/** The README's settings table: variable → default cell, backticks removed. */
function settingsTable(): Map<string, string> {
  const rows = new Map<string, string>();
  for (const line of readme.split("\n")) {
    const m = /^\| `([A-Z_]+)` \| ([^|]*) \|/.exec(line);
    if (m) rows.set(m[1] as string, (m[2] as string).replaceAll("`", "").trim());
  }
  return rows;
}

test("README's settings table: every setting, with the spec's default", () => {
  const rows = settingsTable();
  checkListing(rows, true);
  expect(rows.get("RATE_LIMIT_REFILL_PER_SECOND")).toBe("1.6667 (100/60)");
});

test("README's two commands exist as scripts", () => {
  expect(readme).toContain("npm install && npm start");
  expect(readme).toContain("npm test");
  expect(pkg.scripts.start).toBe("bun src/main.ts");
  expect(pkg.scripts.test).toBe("bun test");
  expect(readme).toContain("docs/protocol.md");
});
