// The README is the front door: its settings table and commands must stay true.
import { expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { SETTINGS } from "../src/config.ts";

const readme = readFileSync(new URL("../README.md", import.meta.url), "utf8");
const pkg = JSON.parse(readFileSync(new URL("../package.json", import.meta.url), "utf8")) as {
  scripts: Record<string, string>;
};

test("README names every setting with its default", () => {
  for (const s of SETTINGS) {
    const row = readme.split("\n").find((line) => line.startsWith(`| \`${s.env}\` |`));
    expect(row, `${s.env} row`).toBeDefined();
    if (s.fallback !== undefined && s.fallback !== "" && !s.fallback.includes(" "))
      expect(row).toContain(s.fallback.startsWith("sqlite") ? "sqlite://" : s.fallback);
  }
});

test("README's two commands exist as scripts", () => {
  expect(readme).toContain("npm install && npm start");
  expect(readme).toContain("npm test");
  expect(pkg.scripts.start).toBe("bun src/main.ts");
  expect(pkg.scripts.test).toBe("bun test");
  expect(readme).toContain("docs/protocol.md");
});
