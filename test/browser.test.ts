// The web chat and admin page in a real browser (headless chromium through playwright-core):
// two users chat in a room, one is moved out when the creator closes it, the pages reconnect
// by themselves after a server restart, and an admin deactivates a user whose page then says
// so. Screenshots go to test-artifacts/. Without /usr/bin/chromium (and not under CI) it skips.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Page } from "playwright-core";
import { type Browser, haveChromium, launch, screenshot } from "./chromium.ts";
import {
  ADMIN_EMAIL,
  ADMIN_PASSWORD,
  freePort,
  startServer,
  type TestServer,
  token,
} from "./helpers.ts";

const RUN = haveChromium();
/** Small enough to hit from the page, large enough for the rest of the suite's frames. */
const RATE_CAPACITY = 60;

interface Person {
  email: string;
  password: string;
  name: string;
}
const alice: Person = {
  email: "alice@example.com",
  password: "alice-password",
  name: "Alice Example",
};
const bob: Person = { email: "bob@example.com", password: "bob-password-1", name: "Bob Builder" };

describe.skipIf(!RUN)("web chat in chromium", () => {
  let srv: TestServer;
  let port = 0;
  let dataDir = "";
  let browser: Browser;
  let a: Page;
  let b: Page;
  const base = () => `http://127.0.0.1:${port}`;
  const start = async () => {
    srv = await startServer({
      PORT: String(port),
      DATA_DIR: dataDir,
      BOT_ENABLED: "false",
      RATE_LIMIT_CAPACITY: String(RATE_CAPACITY),
      RATE_LIMIT_REFILL_PER_SECOND: "1",
    });
  };

  beforeAll(async () => {
    port = await freePort();
    dataDir = mkdtempSync(join(tmpdir(), "kabar-web-"));
    await start();
    const admin = await token(srv, ADMIN_EMAIL, ADMIN_PASSWORD);
    for (const p of [alice, bob]) {
      const res = await fetch(`${srv.api}/users/`, {
        method: "POST",
        headers: { authorization: `Bearer ${admin}`, "content-type": "application/json" },
        body: JSON.stringify({ email: p.email, password: p.password, full_name: p.name }),
      });
      expect(res.status).toBe(200);
    }
    browser = await launch();
    a = await browser.context.newPage();
    b = await browser.context.newPage();
    browser.context.setDefaultTimeout(5000);
  }, 30_000);

  afterAll(async () => {
    await browser?.close();
    await srv?.stop();
    if (dataDir) rmSync(dataDir, { recursive: true, force: true });
  });

  const tid = (page: Page, id: string) => page.locator(`[data-testid="${id}"]`);
  const room = (page: Page, name: string) =>
    page.locator(`[data-testid="room-list"] [data-testid="room-item"][data-room="${name}"]`);
  const connected = (page: Page, ms = 5000) =>
    tid(page, "connection-status").and(page.locator("[data-state=open]")).waitFor({ timeout: ms });

  async function logIn(page: Page, who: Person): Promise<void> {
    await page.goto(`${base()}/`);
    await tid(page, "login-email").fill(who.email);
    await tid(page, "login-password").fill(who.password);
    await tid(page, "login-submit").click();
    await connected(page);
    expect(await tid(page, "login-email").isVisible()).toBe(false);
  }

  test("two users chat in a room, with names, and text is never HTML", async () => {
    const pageErrors: string[] = [];
    for (const p of [a, b]) p.on("pageerror", (e) => pageErrors.push(e.message));
    await logIn(a, alice);
    await logIn(b, bob);
    await expect(tid(a, "connection-status").textContent()).resolves.toBe("Connected");

    // Alice creates a room (and is put in it); Bob sees it in his live list and joins.
    await tid(a, "room-name").fill("lobby");
    await tid(a, "room-create").click();
    await tid(a, "current-room").filter({ hasText: "lobby" }).waitFor();
    await room(b, "lobby").waitFor({ timeout: 5000 });
    await room(b, "lobby").locator("button").click();
    await tid(b, "current-room").filter({ hasText: "lobby" }).waitFor();
    await room(a, "lobby").filter({ hasText: "2 online" }).waitFor({ timeout: 5000 });

    // Alice writes (Enter sends); Bob sees it under Alice's name, not her id.
    await tid(a, "message-input").fill("hello bob");
    await tid(a, "message-input").press("Enter");
    const got = tid(b, "message-item").filter({ hasText: "hello bob" });
    await got.waitFor();
    await got.locator(".sender", { hasText: alice.name }).waitFor();
    expect(await got.locator("time").count()).toBe(1);

    // Bob answers with markup: it shows as text, no element is made from it.
    const markup = `<img src=x data-evil="1"><b>bold</b>`;
    await tid(b, "message-input").fill(markup);
    await tid(b, "message-send").click();
    const answer = tid(a, "message-item").filter({ hasText: "<b>bold</b>" });
    await answer.waitFor();
    await answer.locator(".sender", { hasText: bob.name }).waitFor();
    expect(
      await a.locator("[data-testid=message-list] img, [data-testid=message-list] b").count(),
    ).toBe(0);

    // A direct message from Bob to Alice, picked from the room's member list.
    await tid(b, "room-members").locator("button", { hasText: alice.name }).click();
    await tid(b, "message-input").fill("just for you");
    await tid(b, "message-input").press("Enter");
    await a.locator("[data-testid=message-item].direct", { hasText: "just for you" }).waitFor();

    // Typing shows on the other page.
    await tid(b, "direct-target").locator("button").click();
    await tid(a, "message-input").pressSequentially("typ");
    await tid(b, "typing")
      .filter({ hasText: `${alice.name} is typing` })
      .waitFor();

    await screenshot(a, "chat-alice");
    await screenshot(b, "chat-bob");
    // Readable on a phone: nothing wider than the screen.
    await b.setViewportSize({ width: 390, height: 844 });
    const width = Number(await b.evaluate("document.documentElement.scrollWidth"));
    expect(width).toBeLessThanOrEqual(390);
    await screenshot(b, "chat-bob-phone");
    await b.setViewportSize({ width: 1280, height: 720 });
    expect(pageErrors).toEqual([]);
  }, 30_000);

  test("the creator closes the room: the other page is moved out", async () => {
    await tid(a, "close-room").click();
    await tid(b, "current-room").filter({ hasText: "Not in a room" }).waitFor();
    await tid(b, "message-item").filter({ hasText: "closed by its creator" }).waitFor();
    await expect(tid(b, "leave-room").isDisabled()).resolves.toBe(true);
    await room(b, "lobby").waitFor({ state: "detached", timeout: 5000 });
    await screenshot(b, "room-closed-bob");
  }, 15_000);

  test("after a server restart both pages reconnect by themselves", async () => {
    // Bob joins a room; messages keep flowing after the restart once he is back in one.
    await tid(a, "room-name").fill("after");
    await tid(a, "room-create").press("Enter");
    await tid(a, "current-room").filter({ hasText: "after" }).waitFor();
    await srv.kabar.stop(1000);
    rmSync(srv.dir, { recursive: true, force: true });
    for (const p of [a, b])
      await tid(p, "connection-status").and(p.locator("[data-state=waiting]")).waitFor();
    expect(await tid(a, "connection-status").textContent()).toContain("retrying");
    await start();
    await connected(a, 20_000);
    await connected(b, 20_000);
    // The room lived in the old process's memory: the page says so and is out of it.
    await tid(a, "current-room").filter({ hasText: "Not in a room" }).waitFor();
    await tid(a, "room-name").fill("again");
    await tid(a, "room-create").click();
    await room(b, "again").locator("button").click();
    await tid(b, "current-room").filter({ hasText: "again" }).waitFor();
    await tid(b, "message-input").fill("back online");
    await tid(b, "message-input").press("Enter");
    await tid(a, "message-item").filter({ hasText: "back online" }).waitFor();
    await screenshot(a, "reconnected-alice");
  }, 40_000);

  test("errors and the rate limit are shown in words", async () => {
    // Alice's bucket is nearly full again; spend it on a room that exists, then flood.
    await tid(a, "room-name").fill("again");
    await tid(a, "room-create").click();
    await tid(a, "notice").filter({ hasText: "Room 'again' already exists!" }).waitFor();
    expect(await tid(a, "notice").textContent()).not.toContain("[System]");
    await a.evaluate(`(() => {
      const input = document.querySelector('[data-testid="message-input"]');
      const send = document.querySelector('[data-testid="message-send"]');
      for (let i = 0; i < ${RATE_CAPACITY + 5}; i++) { input.value = "flood " + i; send.click(); }
    })()`);
    await tid(a, "notice")
      .filter({ hasText: /Slow down: too many messages\. Try again in \d+ seconds\./ })
      .waitFor();
  }, 15_000);

  test("the admin page refuses a user who is not a superuser, in words", async () => {
    const page = await browser.context.newPage();
    await page.goto(`${base()}/admin`);
    await tid(page, "login-email").fill(alice.email);
    await tid(page, "login-password").fill(alice.password);
    await tid(page, "login-submit").click();
    await tid(page, "connection-status")
      .filter({ hasText: "This page is for superusers" })
      .waitFor();
    expect(await page.locator("#admin").isVisible()).toBe(false);
    await page.close();
  });

  test("admin page: live stats, chart, broadcast, users, and deactivating a user shows on that user's page", async () => {
    const admin = await browser.context.newPage();
    await admin.goto(`${base()}/admin`);
    await tid(admin, "login-email").fill(ADMIN_EMAIL);
    await tid(admin, "login-password").fill(ADMIN_PASSWORD);
    await tid(admin, "login-submit").click();
    await admin.locator("[data-testid=admin-room][data-room=again]").waitFor();
    expect(Number(await tid(admin, "admin-connections").textContent())).toBeGreaterThanOrEqual(2);
    // The chart renders even while the server publishes no /metrics.
    await tid(admin, "rate-chart").locator("svg").waitFor();
    await tid(admin, "rate-now").waitFor();

    // A broadcast reaches the chat pages.
    await tid(admin, "broadcast-input").fill("maintenance at five");
    await tid(admin, "broadcast-send").click();
    await tid(admin, "broadcast-result").filter({ hasText: "Sent to" }).waitFor();
    await tid(a, "message-item").filter({ hasText: "maintenance at five" }).waitFor();

    // A user made on the page shows in the list.
    await tid(admin, "user-email").fill("carol@example.com");
    await tid(admin, "user-password").fill("carol-password");
    await tid(admin, "user-name").fill("Carol");
    await tid(admin, "user-create").click();
    await admin.locator('[data-testid=user-row][data-email="carol@example.com"]').waitFor();
    // The admin cannot lock themselves out from here.
    const own = admin.locator(`[data-testid=user-row][data-email="${ADMIN_EMAIL}"] button`);
    await expect(own.isDisabled()).resolves.toBe(true);

    const row = admin.locator(`[data-testid=user-row][data-email="${bob.email}"]`);
    await row.locator("[data-testid=user-toggle]").click();
    await admin
      .locator(`[data-testid=user-row][data-email="${bob.email}"][data-active=false]`)
      .waitFor();
    await tid(b, "connection-status").and(b.locator("[data-state=closed]")).waitFor();
    expect(await tid(b, "connection-status").textContent()).toContain("deactivated");
    // And it stays down: no reconnect loop.
    await Bun.sleep(1200);
    expect(await tid(b, "connection-status").getAttribute("data-state")).toBe("closed");
    // The page is out of its room and its controls are inert.
    expect(await b.locator("#chat").getAttribute("inert")).not.toBeNull();
    expect(await tid(b, "current-room").textContent()).toBe("Not in a room");
    await screenshot(admin, "admin");
    await screenshot(b, "deactivated-bob");
    await admin.close();
  }, 30_000);
});
