// Debian's chromium driven by playwright-core for the browser tests (browsers cannot be
// downloaded here). Where /usr/bin/chromium is missing the browser tests skip with a clear line,
// except under CI=true, where they must run (`.ci/run` installs it).
import { existsSync, mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { type BrowserContext, chromium, type Page } from "playwright-core";

export const CHROMIUM = "/usr/bin/chromium";
/** Where the screenshots go (a test artifact; ignored by git). */
export const ARTIFACTS = resolve(import.meta.dir, "..", "test-artifacts");

/** True when the browser tests can run here. Under CI=true a missing chromium is an error. */
export function haveChromium(): boolean {
  if (existsSync(CHROMIUM)) return true;
  if (process.env.CI === "true") throw new Error(`${CHROMIUM} is required under CI=true`);
  console.warn(`skip: ${CHROMIUM} not found; the browser tests are skipped`);
  return false;
}

export interface Browser {
  context: BrowserContext;
  close(): Promise<void>;
}

/** Headless chromium with a new, empty user-data dir (removed on close). */
export async function launch(): Promise<Browser> {
  const dir = mkdtempSync(join(tmpdir(), "kabar-chromium-"));
  const context = await chromium.launchPersistentContext(dir, {
    executablePath: CHROMIUM,
    headless: true,
    args: [
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
    ],
  });
  return {
    context,
    async close() {
      await context.close().catch(() => {});
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Saves a full-page screenshot as test-artifacts/<name>.png. */
export async function screenshot(page: Page, name: string): Promise<void> {
  mkdirSync(ARTIFACTS, { recursive: true });
  await page.screenshot({ path: join(ARTIFACTS, `${name}.png`), fullPage: true });
}
