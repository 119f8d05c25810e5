// The web pages without a browser: what `/`, `/admin` and their assets send (CSP, types, no
// inline script), each page's JS size, unknown paths still 404, and POST /users/names.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { NAMES_MAX_IDS } from "../src/rest/names.ts";
import { messageFrames } from "../src/web/browser/metrics.ts";
import { contentSecurityPolicy, PAGE_SCRIPTS } from "../src/web/pages.ts";
import { adminUser, createUser, startServer, type TestServer } from "./helpers.ts";

const JS_GZIP_BUDGET = 60 * 1024;

let srv: TestServer;
let base = "";
beforeAll(async () => {
  srv = await startServer();
  base = `http://127.0.0.1:${srv.port}`;
});
afterAll(() => srv.stop());

describe("pages", () => {
  for (const path of ["/", "/admin"]) {
    test(`${path} is an HTML page with a strict Content-Security-Policy`, async () => {
      const res = await fetch(`${base}${path}`);
      expect(res.status).toBe(200);
      expect(res.headers.get("content-type")).toBe("text/html; charset=utf-8");
      const csp = res.headers.get("content-security-policy") ?? "";
      expect(csp).toContain("default-src 'none'");
      expect(csp).toContain("script-src 'self'");
      expect(csp).not.toContain("unsafe-inline");
      expect(csp).not.toContain("unsafe-eval");
      expect(csp).toContain(`connect-src 'self' ws://127.0.0.1:${srv.port}`);
      expect(res.headers.get("x-content-type-options")).toBe("nosniff");
      const html = await res.text();
      // Scripts only by src from this origin: no inline script, no CDN, no inline style.
      const scripts = [...html.matchAll(/<script\b[^>]*>/g)].map((m) => m[0]);
      expect(scripts.length).toBe(1);
      expect(scripts[0]).toMatch(/src="\/assets\/(chat|admin)\.js"/);
      expect(html).not.toMatch(/<script[^>]*>[^<]/);
      expect(html).not.toMatch(/https?:\/\//);
      expect(html).not.toMatch(/\sstyle=/);
      for (const id of ["login-email", "login-password", "login-submit", "connection-status"])
        expect(html).toContain(`data-testid="${id}"`);
    });
  }

  test("the chat page has every control the tests drive", async () => {
    const html = await (await fetch(`${base}/`)).text();
    for (const id of [
      "room-name",
      "room-create",
      "room-list",
      "message-input",
      "message-send",
      "message-list",
      "leave-room",
      "close-room",
    ])
      expect(html).toContain(`data-testid="${id}"`);
  });

  test("assets: each page's JS is served with the policy and stays under 60 KB gzipped", async () => {
    for (const name of ["chat.js", "admin.js"]) {
      const res = await fetch(`${base}/assets/${name}`);
      expect(res.status).toBe(200);
      expect(res.headers.get("content-type")).toBe("text/javascript; charset=utf-8");
      expect(res.headers.get("content-security-policy")).toContain("default-src 'none'");
      const js = await res.text();
      expect(js).toBe(PAGE_SCRIPTS[name] as string);
      const gz = Bun.gzipSync(js).length;
      expect(gz).toBeGreaterThan(1000);
      expect(gz).toBeLessThanOrEqual(JS_GZIP_BUDGET);
      // Text reaches the DOM as text only.
      expect(js).not.toMatch(/innerHTML|outerHTML|insertAdjacentHTML|document\.write/);
    }
    const css = await fetch(`${base}/assets/style.css`);
    expect(css.headers.get("content-type")).toBe("text/css; charset=utf-8");
  });

  test("unknown paths still answer 404 {detail: Not Found}", async () => {
    for (const path of ["/nope", "/assets/nope.js", "/admin/x"]) {
      const res = await fetch(`${base}${path}`);
      expect(res.status).toBe(404);
      expect(await res.json()).toEqual({ detail: "Not Found" });
    }
  });

  test("the policy echoes only a well-formed Host", () => {
    expect(contentSecurityPolicy("example.com:8000")).toContain(
      "connect-src 'self' ws://example.com:8000 wss://example.com:8000;",
    );
    expect(contentSecurityPolicy("evil; script-src *")).toContain("connect-src 'self';");
    expect(contentSecurityPolicy(null)).toContain("connect-src 'self';");
  });

  test("the admin chart's counter is read from the Prometheus text format", () => {
    const text = [
      "# TYPE kabar_frames_in_total counter",
      'kabar_frames_in_total{type="message"} 12',
      'kabar_frames_in_total{node="b",type="message"} 3',
      'kabar_frames_in_total{type="join_room"} 40',
      'kabar_frames_in_total_other{type="message"} 99',
    ].join("\n");
    expect(messageFrames(text)).toBe(15);
    expect(messageFrames("")).toBeUndefined();
  });
});

describe("POST /users/names", () => {
  const names = (tok: string | undefined, body: unknown) =>
    fetch(`${srv.api}/users/names`, {
      method: "POST",
      headers: {
        "content-type": "application/json",
        ...(tok ? { authorization: `Bearer ${tok}` } : {}),
      },
      body: JSON.stringify(body),
    });

  test("full names, or a short id; unknown ids left out; never an email", async () => {
    const admin = await adminUser(srv);
    const plain = await createUser(srv);
    const named = await createUser(srv);
    const patched = await fetch(`${srv.api}/users/${named.id}`, {
      method: "PATCH",
      headers: { authorization: `Bearer ${admin.token}`, "content-type": "application/json" },
      body: JSON.stringify({ full_name: "Dewi Lestari" }),
    });
    expect(patched.status).toBe(200);
    const unknown = crypto.randomUUID();
    // Any logged-in user may ask (here a plain user), ids in any case.
    const res = await names(plain.token, {
      ids: [named.id.toUpperCase(), plain.id, admin.id, unknown, plain.id],
    });
    expect(res.status).toBe(200);
    const body = (await res.json()) as { names: Record<string, string> };
    expect(body).toEqual({
      names: {
        [named.id]: "Dewi Lestari",
        [plain.id]: plain.id.slice(0, 8),
        [admin.id]: "Administrator",
      },
    });
    expect(JSON.stringify(body)).not.toContain("@");
  });

  test("needs a valid token", async () => {
    const res = await names(undefined, { ids: [crypto.randomUUID()] });
    expect(res.status).toBe(401);
    expect(await res.json()).toEqual({ detail: "Not authenticated" });
    expect((await names("not-a-token", { ids: [crypto.randomUUID()] })).status).toBe(401);
  });

  test("a bad list is a 422 in words", async () => {
    const user = await createUser(srv);
    const detail = `ids must be a list of 1-${NAMES_MAX_IDS} user ids (UUIDs)`;
    const tooMany = Array.from({ length: NAMES_MAX_IDS + 1 }, () => crypto.randomUUID());
    for (const body of [
      {},
      { ids: [] },
      { ids: "x" },
      { ids: ["nope"] },
      { ids: [1] },
      { ids: tooMany },
      [],
    ]) {
      const res = await names(user.token, body);
      expect(res.status).toBe(422);
      expect(await res.json()).toEqual({ detail });
    }
    const max = Array.from({ length: NAMES_MAX_IDS }, () => crypto.randomUUID());
    expect((await names(user.token, { ids: max })).status).toBe(200);
    const broken = await fetch(`${srv.api}/users/names`, {
      method: "POST",
      headers: { authorization: `Bearer ${user.token}`, "content-type": "application/json" },
      body: "{not json",
    });
    expect(broken.status).toBe(422);
  });
});
