// The lifetime of the token POST /login/access-token returns follows
// ACCESS_TOKEN_EXPIRE_MINUTES (default 11520, 8 days): decode the real JWT, compare exp with
// iat and with the clock around the request.
import { describe, expect, test } from "bun:test";
import { ADMIN_EMAIL, ADMIN_PASSWORD, login, startServer } from "./helpers.ts";

type Claims = Record<string, unknown>;

function claims(jwt: string): Claims {
  const parts = jwt.split(".");
  expect(parts).toHaveLength(3);
  return JSON.parse(Buffer.from(parts[1] as string, "base64url").toString("utf8")) as Claims;
}

/** Starts a server with `env`, logs in, returns the claims and the clock (s) around the login. */
async function loginClaims(
  env: Record<string, string>,
): Promise<{ c: Claims; before: number; after: number }> {
  const srv = await startServer({ BOT_ENABLED: "false", ...env });
  try {
    const before = Math.floor(Date.now() / 1000);
    const res = await login(srv, ADMIN_EMAIL, ADMIN_PASSWORD);
    const after = Math.ceil(Date.now() / 1000);
    expect(res.status).toBe(200);
    const tok = ((await res.json()) as { access_token: string }).access_token;
    // The token works on this server.
    const me = await fetch(`${srv.api}/users/me`, { headers: { authorization: `Bearer ${tok}` } });
    expect(me.status).toBe(200);
    return { c: claims(tok), before, after };
  } finally {
    await srv.stop();
  }
}

function expectLifetime(r: { c: Claims; before: number; after: number }, seconds: number): void {
  const { exp, iat } = r.c;
  expect(Number.isInteger(exp)).toBe(true);
  expect(Number.isInteger(iat)).toBe(true);
  const e = exp as number;
  // exp and iat are whole seconds read a moment apart: equal lifetimes up to one second.
  expect(e - (iat as number)).toBeGreaterThanOrEqual(seconds - 1);
  expect(e - (iat as number)).toBeLessThanOrEqual(seconds);
  // And against the test's own clock around the request.
  expect(e).toBeGreaterThanOrEqual(r.before + seconds - 1);
  expect(e).toBeLessThanOrEqual(r.after + seconds);
}

describe("ACCESS_TOKEN_EXPIRE_MINUTES", () => {
  test("unset: the token lives 11520 minutes (8 days)", async () => {
    expectLifetime(await loginClaims({}), 11520 * 60);
  });

  test("7: the token lives 420 seconds", async () => {
    expectLifetime(await loginClaims({ ACCESS_TOKEN_EXPIRE_MINUTES: "7" }), 7 * 60);
  });

  test("1: the token lives 60 seconds", async () => {
    const r = await loginClaims({ ACCESS_TOKEN_EXPIRE_MINUTES: "1" });
    expectLifetime(r, 60);
    expect(r.c.sub).toMatch(/^[0-9a-f-]{36}$/);
  });

  test("43200 (30 days)", async () => {
    expectLifetime(await loginClaims({ ACCESS_TOKEN_EXPIRE_MINUTES: "43200" }), 43200 * 60);
  });
});
