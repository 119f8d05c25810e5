// The REST section of the contract, against a real server: login, signup, users, ws health /
// stats / broadcast, error bodies, CORS and password storage.
import { Database } from "bun:sqlite";
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { join } from "node:path";
import {
  ADMIN_EMAIL,
  ADMIN_PASSWORD,
  adminUser,
  Client,
  createUser,
  login,
  signToken,
  startServer,
  type TestServer,
  type TestUser,
  token,
} from "./helpers.ts";

const ALLOWED_ORIGIN = "http://a.example";
const OTHER_ORIGIN = "http://b.example";

let srv: TestServer;
let admin: TestUser;
let alice: TestUser;
let bob: TestUser;
let carol: TestUser;

beforeAll(async () => {
  srv = await startServer({ BOT_ENABLED: "false", BACKEND_CORS_ORIGINS: ALLOWED_ORIGIN });
  admin = await adminUser(srv);
  [alice, bob, carol] = await Promise.all([createUser(srv), createUser(srv), createUser(srv)]);
});
afterAll(() => srv.stop());

type Json = Record<string, unknown>;
type Init = {
  method?: string;
  token?: string;
  json?: unknown;
  /** A raw body sent as application/json (for malformed JSON). */
  rawJson?: string;
  origin?: string;
};

/** A request to `${srv.api}${path}` with an optional bearer token and JSON body. */
function call(path: string, init: Init = {}, server: TestServer = srv): Promise<Response> {
  const headers: Record<string, string> = {};
  if (init.token !== undefined) headers.authorization = `Bearer ${init.token}`;
  if (init.origin !== undefined) headers.origin = init.origin;
  let body: string | undefined;
  if (init.json !== undefined || init.rawJson !== undefined) {
    headers["content-type"] = "application/json";
    body = init.rawJson ?? JSON.stringify(init.json);
  }
  return fetch(`${server.api}${path}`, {
    method: init.method ?? (body === undefined ? "GET" : "POST"),
    headers,
    ...(body === undefined ? {} : { body }),
  });
}

/** Asserts a 200 JSON response and returns its body. */
async function ok(res: Response): Promise<Json> {
  const text = await res.text();
  expect({ status: res.status, text }).toMatchObject({ status: 200 });
  expect(res.headers.get("content-type") ?? "").toContain("application/json");
  expect(text).not.toContain("hashed_password");
  expect(text).not.toContain("$argon2");
  return JSON.parse(text) as Json;
}

/**
 * Asserts an error response: the status, a body that is exactly `{"detail": "<string>"}`,
 * no stack trace and no schema dump. Returns the detail.
 */
async function expectDetail(res: Response, status: number, detail?: string): Promise<string> {
  const text = await res.text();
  expect({ status: res.status, text }).toMatchObject({ status });
  expect(res.headers.get("content-type") ?? "").toContain("application/json");
  const body = JSON.parse(text) as Json;
  expect(Object.keys(body)).toEqual(["detail"]);
  expect(typeof body.detail).toBe("string");
  expect((body.detail as string).length).toBeGreaterThan(0);
  for (const word of ["anyOf", "schema", "Schema", "at /", "    at ", ".ts:", "node_modules"])
    expect(text).not.toContain(word);
  if (detail !== undefined) expect(body.detail).toBe(detail);
  return body.detail as string;
}

const USER_KEYS = ["id", "email", "full_name", "is_active", "is_superuser"];
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

function expectUser(u: Json, fields: Json = {}): void {
  for (const k of USER_KEYS) expect(Object.keys(u)).toContain(k);
  expect(Object.keys(u)).not.toContain("hashed_password");
  expect(Object.keys(u)).not.toContain("password");
  expect(u.id as string).toMatch(UUID);
  expect(u).toMatchObject(fields);
}

let seq = 0;
const freshEmail = (tag = "u") => `${tag}${++seq}-${Date.now()}@example.com`;

// ------------------------------------------------------------------ login

describe("POST /login/access-token", () => {
  test("success: {access_token, token_type: bearer}, usable on /users/me", async () => {
    const body = await ok(await login(srv, alice.email, alice.password));
    expect(Object.keys(body).sort()).toEqual(["access_token", "token_type"]);
    expect(body.token_type).toBe("bearer");
    expect((body.access_token as string).split(".")).toHaveLength(3);
    const header = JSON.parse(
      Buffer.from((body.access_token as string).split(".")[0] as string, "base64url").toString(),
    ) as Json;
    expect(header.alg).toBe("HS256");
    const payload = JSON.parse(
      Buffer.from((body.access_token as string).split(".")[1] as string, "base64url").toString(),
    ) as Json;
    expect(payload.sub).toBe(alice.id);
    expect(typeof payload.exp).toBe("number");
    const me = await ok(await call("/users/me", { token: body.access_token as string }));
    expect(me.id).toBe(alice.id);
  });

  test("seed-style OAuth2 form (grant_type, scope, client_id...) and multipart work", async () => {
    const form = new URLSearchParams({
      grant_type: "password",
      username: alice.email,
      password: alice.password,
      scope: "",
      client_id: "",
      client_secret: "",
    });
    const res = await fetch(`${srv.api}/login/access-token`, {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded" },
      body: form.toString(),
    });
    expect((await ok(res)).token_type).toBe("bearer");
    const multipart = new FormData();
    multipart.set("username", alice.email);
    multipart.set("password", alice.password);
    const res2 = await fetch(`${srv.api}/login/access-token`, { method: "POST", body: multipart });
    expect((await ok(res2)).token_type).toBe("bearer");
    // The email is matched case-insensitively, as it is stored.
    expect((await ok(await login(srv, alice.email.toUpperCase(), alice.password))).token_type).toBe(
      "bearer",
    );
  });

  test("wrong password → 400 Incorrect email or password", async () => {
    await expectDetail(
      await login(srv, alice.email, "wrong-password"),
      400,
      "Incorrect email or password",
    );
  });

  test("unknown email → 400 Incorrect email or password", async () => {
    await expectDetail(
      await login(srv, "nobody-here@example.com", "password-123"),
      400,
      "Incorrect email or password",
    );
  });

  test("inactive user with the right password → 400 Inactive user", async () => {
    const u = await createUser(srv);
    await ok(
      await call(`/users/${u.id}`, {
        method: "PATCH",
        token: admin.token,
        json: { is_active: false },
      }),
    );
    await expectDetail(await login(srv, u.email, u.password), 400, "Inactive user");
  });

  test("missing form fields → 422", async () => {
    const post = (fields: Record<string, string>) =>
      fetch(`${srv.api}/login/access-token`, {
        method: "POST",
        body: new URLSearchParams(fields),
      });
    await expectDetail(await post({ username: alice.email }), 422);
    await expectDetail(await post({ password: "password-123" }), 422);
    await expectDetail(await post({}), 422);
  });

  test("throttling: 429 after 10 failures, even with the right password", async () => {
    const t = await startServer({ BOT_ENABLED: "false" });
    try {
      for (let i = 0; i < 10; i++)
        await expectDetail(
          await login(t, ADMIN_EMAIL, `wrong-${i}-password`),
          400,
          "Incorrect email or password",
        );
      const res = await login(t, ADMIN_EMAIL, "wrong-again-password");
      await expectDetail(res, 429);
      const retry = Number(res.headers.get("retry-after"));
      expect(retry).toBeGreaterThan(0);
      await expectDetail(await login(t, ADMIN_EMAIL, ADMIN_PASSWORD), 429);
      // The password is never logged.
      for (const line of t.logs) expect(line).not.toContain(ADMIN_PASSWORD);
    } finally {
      await t.stop();
    }
  });
});

// ------------------------------------------------------------------ signup

describe("POST /users/signup", () => {
  test("open by default in local: returns the user, who can log in", async () => {
    const email = freshEmail("signup");
    const u = await ok(
      await call("/users/signup", {
        json: { email, password: "signup-pass-1", full_name: "Sig Nup" },
      }),
    );
    expectUser(u, { email, full_name: "Sig Nup", is_active: true, is_superuser: false });
    const tok = await token(srv, email, "signup-pass-1");
    expect((await ok(await call("/users/me", { token: tok }))).id).toBe(u.id);
  });

  test("full_name is optional", async () => {
    const email = freshEmail("noname");
    const u = await ok(await call("/users/signup", { json: { email, password: "signup-pass-2" } }));
    expectUser(u, { email, is_superuser: false });
  });

  test("signup cannot make a superuser or an inactive user", async () => {
    const email = freshEmail("sneaky");
    const res = await call("/users/signup", {
      json: { email, password: "signup-pass-3", is_superuser: true, is_active: false },
    });
    if (res.status === 200) {
      const u = await ok(res);
      expect(u.is_superuser).toBe(false);
      expect(u.is_active).toBe(true);
    } else {
      await expectDetail(res, 422);
    }
  });

  test("duplicate email, case-insensitive → 400", async () => {
    await expectDetail(
      await call("/users/signup", { json: { email: alice.email, password: "password-123" } }),
      400,
    );
    await expectDetail(
      await call("/users/signup", {
        json: { email: alice.email.toUpperCase(), password: "password-123" },
      }),
      400,
    );
  });

  test("password of 7 or 129 characters → 422; 8 and 128 are accepted", async () => {
    await expectDetail(
      await call("/users/signup", { json: { email: freshEmail(), password: "x".repeat(7) } }),
      422,
    );
    await expectDetail(
      await call("/users/signup", { json: { email: freshEmail(), password: "x".repeat(129) } }),
      422,
    );
    await ok(
      await call("/users/signup", { json: { email: freshEmail(), password: "x".repeat(8) } }),
    );
    await ok(
      await call("/users/signup", { json: { email: freshEmail(), password: "y".repeat(128) } }),
    );
  });

  test("bad email → 422", async () => {
    for (const email of ["not-an-email", "a@b", "@example.com", "a b@example.com", ""])
      await expectDetail(
        await call("/users/signup", { json: { email, password: "password-123" } }),
        422,
      );
  });

  test("missing fields and malformed JSON → 422", async () => {
    await expectDetail(await call("/users/signup", { json: { email: freshEmail() } }), 422);
    await expectDetail(await call("/users/signup", { json: { password: "password-123" } }), 422);
    const res = await fetch(`${srv.api}/users/signup`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: '{"email": "x@example.com", "password": ',
    });
    await expectDetail(res, 422);
  });

  test("USERS_OPEN_REGISTRATION=false → 403", async () => {
    const closed = await startServer({ USERS_OPEN_REGISTRATION: "false" });
    try {
      await expectDetail(
        await call(
          "/users/signup",
          { json: { email: freshEmail(), password: "password-123" } },
          closed,
        ),
        403,
      );
    } finally {
      await closed.stop();
    }
  });

  test("ENVIRONMENT=staging defaults to closed registration → 403", async () => {
    const staging = await startServer({ ENVIRONMENT: "staging" });
    try {
      await expectDetail(
        await call(
          "/users/signup",
          { json: { email: freshEmail(), password: "password-123" } },
          staging,
        ),
        403,
      );
    } finally {
      await staging.stop();
    }
  });
});

// ------------------------------------------------------------------ users

describe("GET /users/me", () => {
  test("returns the caller", async () => {
    const me = await ok(await call("/users/me", { token: alice.token }));
    expectUser(me, { id: alice.id, email: alice.email, is_active: true, is_superuser: false });
    const adm = await ok(await call("/users/me", { token: admin.token }));
    expectUser(adm, { id: admin.id, email: ADMIN_EMAIL, is_superuser: true });
  });

  test("401 without a token, with a bad token, with a forged token", async () => {
    await expectDetail(await call("/users/me"), 401);
    await expectDetail(await call("/users/me", { token: "garbage" }), 401);
    await expectDetail(
      await call("/users/me", {
        token: signToken(
          { sub: alice.id, exp: Math.floor(Date.now() / 1000) + 60 },
          "x".repeat(40),
        ),
      }),
      401,
    );
    await expectDetail(
      await call("/users/me", {
        token: signToken({ sub: alice.id, exp: Math.floor(Date.now() / 1000) - 60 }),
      }),
      401,
    );
    const basic = await fetch(`${srv.api}/users/me`, {
      headers: { authorization: `Basic ${btoa(`${alice.email}:${alice.password}`)}` },
    });
    await expectDetail(basic, 401);
  });
});

describe("superuser: GET /users/", () => {
  test("{data, count} with skip and limit, with and without trailing slash", async () => {
    for (const path of ["/users/", "/users"]) {
      const all = await ok(await call(`${path}?skip=0&limit=1000`, { token: admin.token }));
      expect(Object.keys(all).sort()).toEqual(["count", "data"]);
      const data = all.data as Json[];
      expect(typeof all.count).toBe("number");
      expect(all.count).toBe(data.length);
      for (const u of data) expectUser(u);
      const ids = data.map((u) => u.id);
      for (const u of [admin, alice, bob, carol]) expect(ids).toContain(u.id);

      const one = await ok(await call(`${path}?skip=1&limit=1`, { token: admin.token }));
      expect(one.count).toBe(all.count);
      expect(one.data as Json[]).toEqual([data[1] as Json]);

      const past = await ok(
        await call(`${path}?skip=${all.count}&limit=10`, { token: admin.token }),
      );
      expect(past).toEqual({ data: [], count: all.count });

      const dflt = await ok(await call(path, { token: admin.token }));
      expect(dflt.count).toBe(all.count);
    }
  });

  test("bad paging parameters → 422 {detail}", async () => {
    for (const q of ["skip=-1", "limit=0", "limit=abc", "skip=abc", "limit=100000"])
      await expectDetail(await call(`/users/?${q}`, { token: admin.token }), 422);
  });

  test("fractional paging numbers → 422, never a 500", async () => {
    for (const q of ["limit=1.5", "skip=0.5", "limit=2.0000001"])
      await expectDetail(await call(`/users/?${q}`, { token: admin.token }), 422);
  });

  test("an out-of-range skip is refused or gives an empty page, never a 500", async () => {
    const res = await call("/users/?skip=99999999999999999999", { token: admin.token });
    if (res.status === 200) expect((await ok(res)).data).toEqual([]);
    else await expectDetail(res, 422);
  });

  test("non-superuser → 403, no token → 401", async () => {
    await expectDetail(await call("/users/", { token: alice.token }), 403);
    await expectDetail(await call("/users", { token: alice.token }), 403);
    await expectDetail(await call("/users/"), 401);
    await expectDetail(await call("/users", { token: "bad.token.here" }), 401);
  });
});

describe("superuser: POST /users/", () => {
  test("creates users with all fields, with and without trailing slash", async () => {
    for (const path of ["/users/", "/users"]) {
      const email = freshEmail("created");
      const u = await ok(
        await call(path, {
          token: admin.token,
          json: { email, password: "created-pass", full_name: "Cre Ated", is_superuser: true },
        }),
      );
      expectUser(u, { email, full_name: "Cre Ated", is_superuser: true, is_active: true });
      const tok = await token(srv, email, "created-pass");
      // The new superuser can list users.
      await ok(await call("/users/", { token: tok }));
    }
    const email = freshEmail("inactive");
    const u = await ok(
      await call("/users/", {
        token: admin.token,
        json: { email, password: "created-pass", is_active: false },
      }),
    );
    expectUser(u, { email, is_active: false, is_superuser: false });
  });

  test("existing email (any case) → 400; bad input → 422", async () => {
    await expectDetail(
      await call("/users/", {
        token: admin.token,
        json: { email: bob.email, password: "password-123" },
      }),
      400,
    );
    await expectDetail(
      await call("/users", {
        token: admin.token,
        json: { email: bob.email.toUpperCase(), password: "password-123" },
      }),
      400,
    );
    await expectDetail(
      await call("/users/", {
        token: admin.token,
        json: { email: freshEmail(), password: "short" },
      }),
      422,
    );
    await expectDetail(
      await call("/users/", {
        token: admin.token,
        json: { email: "nope", password: "password-123" },
      }),
      422,
    );
    await expectDetail(
      await call("/users/", {
        token: admin.token,
        json: { email: freshEmail(), password: "password-123", is_superuser: "yes" },
      }),
      422,
    );
    await expectDetail(await call("/users/", { token: admin.token, rawJson: "{not json" }), 422);
  });

  test("non-superuser → 403, no token → 401", async () => {
    const json = { email: freshEmail(), password: "password-123" };
    await expectDetail(await call("/users/", { token: alice.token, json }), 403);
    await expectDetail(await call("/users", { token: alice.token, json }), 403);
    await expectDetail(await call("/users/", { json }), 401);
  });
});

describe("superuser: PATCH /users/{id}", () => {
  test("updates full_name, email, password, is_superuser", async () => {
    const u = await createUser(srv);
    const newEmail = freshEmail("patched");
    const patched = await ok(
      await call(`/users/${u.id}`, {
        method: "PATCH",
        token: admin.token,
        json: {
          full_name: "Patched Name",
          email: newEmail,
          password: "new-password-9",
          is_superuser: true,
        },
      }),
    );
    expectUser(patched, {
      id: u.id,
      email: newEmail,
      full_name: "Patched Name",
      is_superuser: true,
      is_active: true,
    });
    const tok = await token(srv, newEmail, "new-password-9");
    const me = await ok(await call("/users/me", { token: tok }));
    expect(me).toMatchObject({ id: u.id, email: newEmail, is_superuser: true });
    // A partial patch leaves the other fields alone.
    const again = await ok(
      await call(`/users/${u.id}`, {
        method: "PATCH",
        token: admin.token,
        json: { full_name: null },
      }),
    );
    expect(again).toMatchObject({ id: u.id, email: newEmail, full_name: null, is_superuser: true });
    // Re-activation after deactivation.
    await ok(
      await call(`/users/${u.id}`, {
        method: "PATCH",
        token: admin.token,
        json: { is_active: false },
      }),
    );
    await expectDetail(await call("/users/me", { token: tok }), 401);
    await ok(
      await call(`/users/${u.id}`, {
        method: "PATCH",
        token: admin.token,
        json: { is_active: true },
      }),
    );
    await ok(await call("/users/me", { token: tok }));
  });

  test("is_active false closes the user's sockets with 1008", async () => {
    const u = await createUser(srv);
    const a = await Client.connect(srv, u.token);
    const b = await Client.connect(srv, u.token, "text");
    const bystander = await Client.connect(srv, bob.token);
    await ok(
      await call(`/users/${u.id}`, {
        method: "PATCH",
        token: admin.token,
        json: { is_active: false },
      }),
    );
    expect((await a.waitClose()).code).toBe(1008);
    expect((await b.waitClose()).code).toBe(1008);
    expect(bystander.ws.readyState).toBe(WebSocket.OPEN);
    bystander.close();
  });

  test("unknown id → 404, taken email → 400, bad body → 422", async () => {
    await expectDetail(
      await call(`/users/${crypto.randomUUID()}`, {
        method: "PATCH",
        token: admin.token,
        json: { full_name: "x" },
      }),
      404,
    );
    await expectDetail(
      await call("/users/not-a-uuid", {
        method: "PATCH",
        token: admin.token,
        json: { full_name: "x" },
      }),
      404,
    );
    await expectDetail(
      await call(`/users/${carol.id}`, {
        method: "PATCH",
        token: admin.token,
        json: { email: bob.email },
      }),
      400,
    );
    await expectDetail(
      await call(`/users/${carol.id}`, {
        method: "PATCH",
        token: admin.token,
        json: { email: bob.email.toUpperCase() },
      }),
      400,
    );
    await expectDetail(
      await call(`/users/${carol.id}`, {
        method: "PATCH",
        token: admin.token,
        json: { password: "short" },
      }),
      422,
    );
    await expectDetail(
      await call(`/users/${carol.id}`, { method: "PATCH", token: admin.token, rawJson: "{]" }),
      422,
    );
    // carol is unchanged.
    const list = await ok(await call("/users/?limit=1000", { token: admin.token }));
    const c = (list.data as Json[]).find((u) => u.id === carol.id);
    expect(c).toMatchObject({ email: carol.email.toLowerCase() });
  });

  test("PATCH keeping the user's own email (any case) is not a conflict", async () => {
    const same = await ok(
      await call(`/users/${carol.id}`, {
        method: "PATCH",
        token: admin.token,
        json: { email: carol.email },
      }),
    );
    expect(same.email).toBe(carol.email.toLowerCase());
    const upper = await ok(
      await call(`/users/${carol.id}`, {
        method: "PATCH",
        token: admin.token,
        json: { email: carol.email.toUpperCase() },
      }),
    );
    expect(upper.id).toBe(carol.id);
  });

  test("non-superuser → 403, no token → 401", async () => {
    await expectDetail(
      await call(`/users/${alice.id}`, {
        method: "PATCH",
        token: alice.token,
        json: { is_superuser: true },
      }),
      403,
    );
    await expectDetail(
      await call(`/users/${bob.id}`, {
        method: "PATCH",
        token: alice.token,
        json: { full_name: "hacked" },
      }),
      403,
    );
    await expectDetail(
      await call(`/users/${bob.id}`, { method: "PATCH", json: { full_name: "hacked" } }),
      401,
    );
    const me = await ok(await call("/users/me", { token: alice.token }));
    expect(me.is_superuser).toBe(false);
  });
});

describe("superuser: DELETE /users/{id}", () => {
  test("deletes the user, closes their sockets, their token gets 401", async () => {
    const u = await createUser(srv);
    const live = await Client.connect(srv, u.token);
    const before = await ok(await call("/users/?limit=1000", { token: admin.token }));
    await ok(await call(`/users/${u.id}`, { method: "DELETE", token: admin.token }));
    expect((await live.waitClose()).code).toBe(1008);
    const after = await ok(await call("/users/?limit=1000", { token: admin.token }));
    expect(after.count).toBe((before.count as number) - 1);
    expect((after.data as Json[]).map((x) => x.id)).not.toContain(u.id);
    await expectDetail(await call("/users/me", { token: u.token }), 401);
    await expectDetail(await call(`/users/${u.id}`, { method: "DELETE", token: admin.token }), 404);
  });

  test("a superuser cannot delete themselves → 403", async () => {
    await expectDetail(
      await call(`/users/${admin.id}`, { method: "DELETE", token: admin.token }),
      403,
    );
    await ok(await call("/users/me", { token: admin.token }));
  });

  test("unknown id → 404, non-superuser → 403, no token → 401", async () => {
    await expectDetail(
      await call(`/users/${crypto.randomUUID()}`, { method: "DELETE", token: admin.token }),
      404,
    );
    await expectDetail(
      await call(`/users/${bob.id}`, { method: "DELETE", token: alice.token }),
      403,
    );
    await expectDetail(await call(`/users/${bob.id}`, { method: "DELETE" }), 401);
    await ok(await call("/users/me", { token: bob.token }));
  });
});

// ------------------------------------------------------------------ ws companions

describe("/ws/health, /ws/stats, /ws/broadcast", () => {
  const health = async () => ok(await call("/ws/health"));

  async function waitConnections(n: number): Promise<void> {
    for (let i = 0; i < 100; i++) {
      if ((await health()).active_connections === n) return;
      await Bun.sleep(20);
    }
    expect((await health()).active_connections).toBe(n);
  }

  test("GET /ws/health (no auth) has the exact shape and counts sockets", async () => {
    await waitConnections(0);
    const h0 = await health();
    // Version 1.1 adds `node` (this node's id) and `redis` ("off" on one node).
    expect(Object.keys(h0).sort()).toEqual([
      "active_connections",
      "node",
      "redis",
      "service",
      "status",
    ]);
    expect(h0.node).toMatch(/^[0-9a-f]{12}$/);
    expect(h0).toEqual({
      status: "healthy",
      service: "websocket",
      active_connections: h0.active_connections as number,
      node: h0.node as string,
      redis: "off",
    });
    const base = h0.active_connections as number;
    const a = await Client.connect(srv, alice.token);
    const b = await Client.connect(srv, bob.token, "text");
    expect(await health()).toEqual({
      status: "healthy",
      service: "websocket",
      active_connections: base + 2,
      node: h0.node as string,
      redis: "off",
    });
    a.close();
    b.close();
    await waitConnections(base);
  });

  test("GET /ws/stats (auth): rooms as in list_rooms", async () => {
    await expectDetail(await call("/ws/stats"), 401);
    await expectDetail(await call("/ws/stats", { token: "nope" }), 401);

    const a = await Client.connect(srv, alice.token);
    const b = await Client.connect(srv, bob.token);
    expect(JSON.parse(await a.ask({ type: "create_room", room_name: "stats-one" })).type).toBe(
      "room_created",
    );
    expect(JSON.parse(await b.ask({ type: "create_room", room_name: "stats-two" })).type).toBe(
      "room_created",
    );
    a.send({ type: "join_room", room_name: "stats-one" });
    expect(await a.take(2)).toHaveLength(2);
    b.send({ type: "join_room", room_name: "stats-one" });
    expect(await b.take(2)).toHaveLength(2);
    const c = await Client.connect(srv, carol.token, "text");

    expect(await a.stray()).toEqual([]);
    a.send({ type: "list_rooms" });
    const rooms = await a.json();
    expect(rooms.type).toBe("rooms");

    for (const tok of [alice.token, admin.token]) {
      const stats = await ok(await call("/ws/stats", { token: tok }));
      // Version 1.1 adds `nodes` (one node: this one, with its sockets).
      expect(Object.keys(stats).sort()).toEqual([
        "nodes",
        "rooms",
        "total_connections",
        "total_rooms",
      ]);
      const h = await health();
      expect(stats.nodes).toEqual([{ id: h.node, connections: h.active_connections }]);
      expect(stats.rooms).toEqual(rooms.rooms);
      expect(stats.total_rooms).toBe(2);
      expect(stats.total_connections).toBe((await health()).active_connections);
    }
    const stats = await ok(await call("/ws/stats", { token: bob.token }));
    const byName = Object.fromEntries((stats.rooms as Json[]).map((r) => [r.name, r]));
    expect(Object.keys(byName).sort()).toEqual(["stats-one", "stats-two"]);
    expect(byName["stats-one"]).toMatchObject({ creator: alice.id, members: 2 });
    expect(byName["stats-two"]).toMatchObject({ creator: bob.id, members: 0 });
    for (const r of stats.rooms as Json[]) {
      expect(Object.keys(r).sort()).toEqual(["created_at", "creator", "members", "name"]);
      expect(r.created_at as string).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$/);
    }
    const times = (stats.rooms as Json[]).map((r) => Date.parse(r.created_at as string));
    expect([...times].sort((x, y) => x - y)).toEqual(times);

    // Clean up: close both rooms.
    a.send({ type: "close_room", room_name: "stats-one" });
    await a.take(2);
    await b.take(2);
    b.send({ type: "close_room", room_name: "stats-two" });
    await b.next();
    const empty = await ok(await call("/ws/stats", { token: alice.token }));
    expect(empty).toMatchObject({ total_rooms: 0, rooms: [] });
    for (const x of [a, b, c]) x.close();
  });

  test("POST /ws/broadcast by a superuser reaches every socket in both formats", async () => {
    const super2 = await createUser(srv, { superuser: true });
    const sockets = {
      adminJson: await Client.connect(srv, admin.token),
      aliceJson: await Client.connect(srv, alice.token),
      aliceText: await Client.connect(srv, alice.token, "text"),
      bobText: await Client.connect(srv, bob.token, "text"),
    };
    // A socket in a room still gets the broadcast once.
    expect(
      JSON.parse(await sockets.aliceJson.ask({ type: "create_room", room_name: "bc-room" })).type,
    ).toBe("room_created");
    sockets.aliceJson.send({ type: "join_room", room_name: "bc-room" });
    await sockets.aliceJson.take(2);

    for (const sender of [admin, super2]) {
      const content = `maintenance at 5 by ${sender.id.slice(0, 8)}`;
      await ok(
        await call("/ws/broadcast", { token: sender.token, json: { content: `  ${content}\n ` } }),
      );
      const ids = new Set<string>();
      for (const client of [sockets.adminJson, sockets.aliceJson]) {
        const ev = await client.json();
        expect(Object.keys(ev).sort()).toEqual(["content", "from", "id", "sent_at", "type"]);
        expect(ev).toMatchObject({ type: "broadcast", from: sender.id, content });
        expect(ev.sent_at as string).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$/);
        ids.add(ev.id as string);
      }
      expect(ids.size).toBe(1);
      for (const client of [sockets.aliceText, sockets.bobText])
        expect(await client.next()).toBe(`[Broadcast] ${content}`);
      for (const client of Object.values(sockets)) expect(await client.stray()).toEqual([]);
    }
    for (const client of Object.values(sockets)) client.close();
  });

  test("POST /ws/broadcast: normal user 403, no token 401, bad content 422, nothing sent", async () => {
    const watcher = await Client.connect(srv, bob.token);
    await expectDetail(
      await call("/ws/broadcast", { token: alice.token, json: { content: "hi" } }),
      403,
    );
    await expectDetail(await call("/ws/broadcast", { json: { content: "hi" } }), 401);
    await expectDetail(
      await call("/ws/broadcast", { token: "x.y.z", json: { content: "hi" } }),
      401,
    );
    for (const body of [
      { content: "" },
      { content: "   \n\t " },
      { content: "x".repeat(10001) },
      {},
      { content: 5 },
      { content: null },
    ])
      await expectDetail(await call("/ws/broadcast", { token: admin.token, json: body }), 422);
    await expectDetail(
      await call("/ws/broadcast", { token: admin.token, rawJson: '{"content": "hi"' }),
      422,
    );
    await expectDetail(await call("/ws/broadcast", { token: admin.token, rawJson: "[1, 2" }), 422);
    expect(await watcher.stray()).toEqual([]);
    // 10000 characters is the upper bound and is accepted.
    await ok(
      await call("/ws/broadcast", { token: admin.token, json: { content: "y".repeat(10000) } }),
    );
    expect((await watcher.json()).content).toBe("y".repeat(10000));
    watcher.close();
  });
});

// ------------------------------------------------------------------ paths and errors

describe("paths and error bodies", () => {
  test("unknown paths → 404 {detail}", async () => {
    await expectDetail(await fetch(`${srv.api}/nope`), 404);
    // `/` is the web chat now (test/web.test.ts); other paths outside the API still 404.
    await expectDetail(await fetch(`http://127.0.0.1:${srv.port}/index.html`), 404);
    await expectDetail(await fetch(`http://127.0.0.1:${srv.port}/users/me`), 404);
    await expectDetail(await call("/users/me/extra/segments", { token: alice.token }), 404);
    await expectDetail(await call("/nope", { method: "POST", json: { a: 1 } }), 404);
    const put = await call("/users/me", { method: "PUT", token: alice.token, json: {} });
    expect([404, 405]).toContain(put.status);
    await expectDetail(put, put.status);
  });

  test("trailing slash works on the other routes too", async () => {
    const me = await ok(await call("/users/me/", { token: alice.token }));
    expect(me.id).toBe(alice.id);
    await ok(await call("/ws/health/"));
    const u = await createUser(srv);
    const patched = await ok(
      await call(`/users/${u.id}/`, {
        method: "PATCH",
        token: admin.token,
        json: { full_name: "Slash" },
      }),
    );
    expect(patched.full_name).toBe("Slash");
    await ok(await call(`/users/${u.id}/`, { method: "DELETE", token: admin.token }));
    await ok(
      await call("/users/signup/", {
        json: { email: freshEmail("slash"), password: "password-123" },
      }),
    );
    const res = await fetch(`${srv.api}/login/access-token/`, {
      method: "POST",
      body: new URLSearchParams({ username: alice.email, password: alice.password }),
    });
    expect((await ok(res)).token_type).toBe("bearer");
  });

  test("malformed JSON bodies → 422 {detail} on every JSON route", async () => {
    const bad = '{"email": "a@example.com", ';
    await expectDetail(await call("/users/signup", { rawJson: bad }), 422);
    await expectDetail(await call("/users/", { token: admin.token, rawJson: bad }), 422);
    await expectDetail(await call("/users", { token: admin.token, rawJson: bad }), 422);
    await expectDetail(
      await call(`/users/${bob.id}`, { method: "PATCH", token: admin.token, rawJson: bad }),
      422,
    );
    await expectDetail(await call("/ws/broadcast", { token: admin.token, rawJson: bad }), 422);
    const loginJson = await fetch(`${srv.api}/login/access-token`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: bad,
    });
    await expectDetail(loginJson, 422);
  });

  test("validation errors do not echo the schema or the input", async () => {
    const secretish = "do-not-echo-this-value";
    const res = await call("/users/signup", { json: { email: secretish, password: "p" } });
    const text = await res.clone().text();
    await expectDetail(res, 422);
    expect(text).not.toContain(secretish);
    const res2 = await call("/users/", {
      token: admin.token,
      json: { email: freshEmail(), password: "password-123", is_active: { anyOf: 1 } },
    });
    await expectDetail(res2, 422);
  });
});

// ------------------------------------------------------------------ CORS

describe("CORS with BACKEND_CORS_ORIGINS=http://a.example", () => {
  const preflight = (origin: string, path = "/users/me") =>
    fetch(`${srv.api}${path}`, {
      method: "OPTIONS",
      headers: {
        origin,
        "access-control-request-method": "POST",
        "access-control-request-headers": "authorization, content-type",
      },
    });

  test("preflight from the allowed origin is allowed", async () => {
    for (const path of ["/users/me", "/login/access-token", "/ws/broadcast", "/users/"]) {
      const res = await preflight(ALLOWED_ORIGIN, path);
      expect(res.status).toBeGreaterThanOrEqual(200);
      expect(res.status).toBeLessThan(300);
      expect(res.headers.get("access-control-allow-origin")).toBe(ALLOWED_ORIGIN);
      expect((res.headers.get("access-control-allow-methods") ?? "").toUpperCase()).toContain(
        "POST",
      );
      expect((res.headers.get("access-control-allow-headers") ?? "").toLowerCase()).toContain(
        "authorization",
      );
    }
  });

  test("preflight from another origin is not allowed", async () => {
    for (const origin of [OTHER_ORIGIN, "http://a.example.evil.com", "https://a.example"]) {
      const res = await preflight(origin);
      expect(res.headers.get("access-control-allow-origin")).toBeNull();
    }
  });

  test("responses carry the header for the allowed origin only", async () => {
    const h = await call("/ws/health", { origin: ALLOWED_ORIGIN });
    expect(h.status).toBe(200);
    expect(h.headers.get("access-control-allow-origin")).toBe(ALLOWED_ORIGIN);
    const me = await call("/users/me", { origin: ALLOWED_ORIGIN, token: alice.token });
    expect(me.status).toBe(200);
    expect(me.headers.get("access-control-allow-origin")).toBe(ALLOWED_ORIGIN);
    // Errors too, so a browser can read the detail.
    const unauth = await call("/users/me", { origin: ALLOWED_ORIGIN });
    expect(unauth.headers.get("access-control-allow-origin")).toBe(ALLOWED_ORIGIN);
    await expectDetail(unauth, 401);
    const missing = await call("/nope", { origin: ALLOWED_ORIGIN });
    expect(missing.headers.get("access-control-allow-origin")).toBe(ALLOWED_ORIGIN);
    await expectDetail(missing, 404);
    const invalid = await call("/users/signup", { origin: ALLOWED_ORIGIN, json: { email: "x" } });
    expect(invalid.headers.get("access-control-allow-origin")).toBe(ALLOWED_ORIGIN);
    await expectDetail(invalid, 422);
    const loginRes = await fetch(`${srv.api}/login/access-token`, {
      method: "POST",
      headers: { origin: ALLOWED_ORIGIN },
      body: new URLSearchParams({ username: alice.email, password: alice.password }),
    });
    expect(loginRes.status).toBe(200);
    expect(loginRes.headers.get("access-control-allow-origin")).toBe(ALLOWED_ORIGIN);

    for (const origin of [OTHER_ORIGIN, undefined]) {
      const other = await call("/ws/health", origin === undefined ? {} : { origin });
      expect(other.status).toBe(200);
      expect(other.headers.get("access-control-allow-origin")).toBeNull();
      const err = await call("/users/me", origin === undefined ? {} : { origin });
      expect(err.headers.get("access-control-allow-origin")).toBeNull();
      await expectDetail(err, 401);
    }
  });
});

// ------------------------------------------------------------------ password storage

describe("password storage", () => {
  test("hashes are argon2id in SQLite and never returned by the API", async () => {
    const db = new Database(join(srv.dir, "kabar.db"), { readonly: true });
    try {
      const rows = db.query("SELECT id, email, hashed_password FROM users").all() as {
        id: string;
        email: string;
        hashed_password: string;
      }[];
      expect(rows.length).toBeGreaterThan(5);
      for (const r of rows) {
        expect(r.hashed_password.startsWith("$argon2id$")).toBe(true);
        expect(r.hashed_password).not.toContain("password-123");
      }
      const ids = rows.map((r) => r.id);
      for (const u of [admin, alice, bob, carol]) expect(ids).toContain(u.id);
    } finally {
      db.close();
    }
    // Every place a user is returned: none carries a hash (ok() checks the raw text too).
    const list = await ok(await call("/users/?limit=1000", { token: admin.token }));
    for (const u of list.data as Json[]) expect(Object.keys(u)).not.toContain("hashed_password");
    await ok(await call("/users/me", { token: alice.token }));
    await ok(
      await call(`/users/${carol.id}`, {
        method: "PATCH",
        token: admin.token,
        json: { full_name: "C" },
      }),
    );
    await ok(
      await call("/users/signup", {
        json: { email: freshEmail("hash"), password: "hash-check-123" },
      }),
    );
    await ok(
      await call("/users/", {
        token: admin.token,
        json: { email: freshEmail("hash"), password: "hash-check-123" },
      }),
    );
  });

  test("a password changed by PATCH is stored as argon2id", async () => {
    await ok(
      await call(`/users/${carol.id}`, {
        method: "PATCH",
        token: admin.token,
        json: { password: "carol-new-password" },
      }),
    );
    carol.password = "carol-new-password";
    const db = new Database(join(srv.dir, "kabar.db"), { readonly: true });
    try {
      const row = db.query("SELECT hashed_password FROM users WHERE id = ?").get(carol.id) as {
        hashed_password: string;
      };
      expect(row.hashed_password.startsWith("$argon2id$")).toBe(true);
      expect(await Bun.password.verify("carol-new-password", row.hashed_password)).toBe(true);
    } finally {
      db.close();
    }
  });

  test("no log line contains a password or a token", () => {
    const secrets = [
      ADMIN_PASSWORD,
      alice.password,
      carol.password,
      admin.token,
      alice.token,
      bob.token,
    ];
    for (const line of srv.logs) for (const s of secrets) expect(line).not.toContain(s);
  });
});
