// CORS over real HTTP for each way BACKEND_CORS_ORIGINS can be written: a comma list (with a
// trailing slash on one origin), a JSON array, "*", and unset. A preflight from an allowed
// origin gets the allow headers, an allowed origin's GET gets Access-Control-Allow-Origin, a
// disallowed origin gets no CORS header at all. (test/rest.test.ts covers one origin across
// every route; this file covers the forms of the setting.)
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { ADMIN_EMAIL, ADMIN_PASSWORD, startServer, type TestServer, token } from "./helpers.ts";

const CORS_HEADERS = [
  "access-control-allow-origin",
  "access-control-allow-methods",
  "access-control-allow-headers",
  "access-control-allow-credentials",
  "access-control-max-age",
];

function preflight(srv: TestServer, origin: string, path = "/users/me"): Promise<Response> {
  return fetch(`${srv.api}${path}`, {
    method: "OPTIONS",
    headers: {
      origin,
      "access-control-request-method": "PATCH",
      "access-control-request-headers": "authorization, content-type, x-custom",
    },
  });
}

function get(srv: TestServer, path: string, origin?: string, tok?: string): Promise<Response> {
  const headers: Record<string, string> = {};
  if (origin !== undefined) headers.origin = origin;
  if (tok !== undefined) headers.authorization = `Bearer ${tok}`;
  return fetch(`${srv.api}${path}`, { headers });
}

/** A preflight the browser accepts for `origin` (echoed, or `*`). */
function expectPreflightAllowed(res: Response, allowOrigin: string): void {
  expect(res.status).toBeGreaterThanOrEqual(200);
  expect(res.status).toBeLessThan(300);
  expect(res.headers.get("access-control-allow-origin")).toBe(allowOrigin);
  const methods = (res.headers.get("access-control-allow-methods") ?? "").toUpperCase();
  for (const m of ["GET", "POST", "PATCH", "DELETE"]) expect(methods).toContain(m);
  const allowHeaders = (res.headers.get("access-control-allow-headers") ?? "").toLowerCase();
  for (const h of ["authorization", "content-type", "x-custom"]) expect(allowHeaders).toContain(h);
  expect(Number(res.headers.get("access-control-max-age"))).toBeGreaterThan(0);
}

function expectNoCors(res: Response): void {
  for (const h of CORS_HEADERS) expect({ h, v: res.headers.get(h) }).toEqual({ h, v: null });
}

describe("BACKEND_CORS_ORIGINS as a comma list", () => {
  let srv: TestServer;
  let tok: string;
  beforeAll(async () => {
    srv = await startServer({
      BOT_ENABLED: "false",
      BACKEND_CORS_ORIGINS: "http://a.example, https://b.example:8443/ ,",
    });
    tok = await token(srv, ADMIN_EMAIL, ADMIN_PASSWORD);
  });
  afterAll(() => srv.stop());

  test("a preflight from each listed origin gets the allow headers", async () => {
    for (const origin of ["http://a.example", "https://b.example:8443"]) {
      const res = await preflight(srv, origin);
      expectPreflightAllowed(res, origin);
      // The allowed origin is echoed (not "*"), with credentials: responses vary on Origin.
      expect(res.headers.get("access-control-allow-credentials")).toBe("true");
      expect((res.headers.get("vary") ?? "").toLowerCase()).toContain("origin");
    }
  });

  test("a GET from each listed origin gets Access-Control-Allow-Origin", async () => {
    for (const origin of ["http://a.example", "https://b.example:8443"]) {
      const health = await get(srv, "/ws/health", origin);
      expect(health.status).toBe(200);
      expect(health.headers.get("access-control-allow-origin")).toBe(origin);
      expect((health.headers.get("vary") ?? "").toLowerCase()).toContain("origin");
      const me = await get(srv, "/users/me", origin, tok);
      expect(me.status).toBe(200);
      expect(me.headers.get("access-control-allow-origin")).toBe(origin);
      expect(me.headers.get("access-control-allow-credentials")).toBe("true");
    }
  });

  test("an origin not in the list gets no CORS header, on a preflight or a GET", async () => {
    for (const origin of [
      "http://c.example",
      "https://a.example", // other scheme
      "http://a.example:8080", // other port
      "https://b.example", // listed only with :8443
      "http://a.example.evil.com",
      "http://evil.com/http://a.example",
      "null",
    ]) {
      expectNoCors(await preflight(srv, origin));
      const res = await get(srv, "/ws/health", origin);
      expect(res.status).toBe(200);
      expectNoCors(res);
      const me = await get(srv, "/users/me", origin, tok);
      expect(me.status).toBe(200);
      expectNoCors(me);
    }
  });

  test("no Origin header: no CORS header", async () => {
    expectNoCors(await get(srv, "/ws/health"));
  });
});

describe("BACKEND_CORS_ORIGINS as a JSON array", () => {
  let srv: TestServer;
  beforeAll(async () => {
    srv = await startServer({
      BOT_ENABLED: "false",
      BACKEND_CORS_ORIGINS: '["http://localhost:5173", "https://app.example/"]',
    });
  });
  afterAll(() => srv.stop());

  test("listed origins are allowed, others are not", async () => {
    for (const origin of ["http://localhost:5173", "https://app.example"]) {
      expectPreflightAllowed(await preflight(srv, origin, "/login/access-token"), origin);
      const res = await get(srv, "/ws/health", origin);
      expect(res.headers.get("access-control-allow-origin")).toBe(origin);
    }
    for (const origin of ["http://localhost:5174", "http://app.example"]) {
      expectNoCors(await preflight(srv, origin, "/login/access-token"));
      expectNoCors(await get(srv, "/ws/health", origin));
    }
  });
});

describe('BACKEND_CORS_ORIGINS="*"', () => {
  let srv: TestServer;
  beforeAll(async () => {
    srv = await startServer({ BOT_ENABLED: "false", BACKEND_CORS_ORIGINS: "*" });
  });
  afterAll(() => srv.stop());

  test("any origin: preflight allowed and responses carry `*` (never with credentials)", async () => {
    for (const origin of ["http://anything.example", "https://x.test:9999"]) {
      const pre = await preflight(srv, origin);
      expectPreflightAllowed(pre, "*");
      expect(pre.headers.get("access-control-allow-credentials")).toBeNull();
      const res = await get(srv, "/ws/health", origin);
      expect(res.status).toBe(200);
      expect(res.headers.get("access-control-allow-origin")).toBe("*");
      expect(res.headers.get("access-control-allow-credentials")).toBeNull();
    }
  });
});

describe("BACKEND_CORS_ORIGINS unset", () => {
  let srv: TestServer;
  beforeAll(async () => {
    srv = await startServer({ BOT_ENABLED: "false" });
  });
  afterAll(() => srv.stop());

  test("no origin is allowed: no CORS header on a preflight or a GET", async () => {
    for (const origin of ["http://a.example", "http://localhost:5173"]) {
      expectNoCors(await preflight(srv, origin));
      const res = await get(srv, "/ws/health", origin);
      expect(res.status).toBe(200);
      expectNoCors(res);
    }
  });
});
