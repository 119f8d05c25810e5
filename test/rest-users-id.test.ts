// GET /api/v1/users/{id} against a real server: a user reads themselves, only a superuser reads
// anyone else, unknown ids are 404 and malformed ids a 4xx, every error a bare {"detail"}.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { adminUser, createUser, startServer, type TestServer, type TestUser } from "./helpers.ts";

type Json = Record<string, unknown>;

let srv: TestServer;
let admin: TestUser;
let alice: TestUser;
let bob: TestUser;
let root2: TestUser;

beforeAll(async () => {
  srv = await startServer({ BOT_ENABLED: "false" });
  admin = await adminUser(srv);
  [alice, bob, root2] = await Promise.all([
    createUser(srv),
    createUser(srv),
    createUser(srv, { superuser: true }),
  ]);
});
afterAll(() => srv.stop());

const get = (id: string, tok?: string) =>
  fetch(
    `${srv.api}/users/${id}`,
    tok === undefined ? {} : { headers: { authorization: `Bearer ${tok}` } },
  );

/** A 200 JSON user with the public fields and no password hash. */
async function expectUser(res: Response, fields: Json): Promise<Json> {
  const text = await res.text();
  expect({ status: res.status, text }).toMatchObject({ status: 200 });
  expect(res.headers.get("content-type") ?? "").toContain("application/json");
  expect(text).not.toContain("hashed_password");
  expect(text).not.toContain("$argon2");
  const body = JSON.parse(text) as Json;
  for (const key of ["id", "email", "full_name", "is_active", "is_superuser"])
    expect(Object.keys(body)).toContain(key);
  expect(Object.keys(body)).not.toContain("password");
  expect(body).toMatchObject(fields);
  return body;
}

/** An error with `status` whose body is exactly {"detail": "<non-empty string>"}. */
async function expectDetail(res: Response, status: number, detail?: string): Promise<string> {
  const text = await res.text();
  expect({ status: res.status, text }).toMatchObject({ status });
  expect(res.headers.get("content-type") ?? "").toContain("application/json");
  const body = JSON.parse(text) as Json;
  expect(Object.keys(body)).toEqual(["detail"]);
  expect(typeof body.detail).toBe("string");
  expect((body.detail as string).length).toBeGreaterThan(0);
  for (const word of ["    at ", ".ts:", "node_modules", "schema"])
    expect(text).not.toContain(word);
  if (detail !== undefined) expect(body.detail).toBe(detail);
  return body.detail as string;
}

const FORBIDDEN = "The user doesn't have enough privileges";

describe("GET /users/{id}", () => {
  test("a user reads their own record (also with the id in upper case and a trailing slash)", async () => {
    const want = { id: alice.id, email: alice.email, is_active: true, is_superuser: false };
    await expectUser(await get(alice.id, alice.token), want);
    await expectUser(await get(alice.id.toUpperCase(), alice.token), want);
    await expectUser(await get(`${alice.id}/`, alice.token), want);
  });

  test("a non-superuser reading another user's id → 403, whether that user exists or not", async () => {
    await expectDetail(await get(bob.id, alice.token), 403, FORBIDDEN);
    await expectDetail(await get(admin.id, alice.token), 403, FORBIDDEN);
    // No way to probe which ids exist: an unknown id is refused the same way.
    await expectDetail(await get(crypto.randomUUID(), alice.token), 403, FORBIDDEN);
  });

  test("a superuser reads any user, including other superusers", async () => {
    await expectUser(await get(alice.id, admin.token), { id: alice.id, email: alice.email });
    await expectUser(await get(bob.id, admin.token), { id: bob.id, is_superuser: false });
    await expectUser(await get(root2.id, admin.token), { id: root2.id, is_superuser: true });
    await expectUser(await get(admin.id, root2.token), { id: admin.id, is_superuser: true });
    await expectUser(await get(admin.id, admin.token), { id: admin.id, is_superuser: true });
    // It is the same record GET /users/me returns to its owner.
    const me = (await (
      await fetch(`${srv.api}/users/me`, { headers: { authorization: `Bearer ${bob.token}` } })
    ).json()) as Json;
    expect(await expectUser(await get(bob.id, admin.token), {})).toEqual(me);
  });

  test("a superuser sees changes and deactivated users", async () => {
    const u = await createUser(srv);
    const patch = await fetch(`${srv.api}/users/${u.id}`, {
      method: "PATCH",
      headers: { authorization: `Bearer ${admin.token}`, "content-type": "application/json" },
      body: JSON.stringify({ full_name: "Read Back", is_active: false }),
    });
    expect(patch.status).toBe(200);
    await expectUser(await get(u.id, admin.token), {
      id: u.id,
      full_name: "Read Back",
      is_active: false,
    });
    // The deactivated user's own token no longer works, not even for their own record.
    await expectDetail(await get(u.id, u.token), 401);
  });

  test("unknown id → 404 for a superuser, also after a delete", async () => {
    await expectDetail(await get(crypto.randomUUID(), admin.token), 404, "User not found");
    const u = await createUser(srv);
    await expectUser(await get(u.id, admin.token), { id: u.id });
    const del = await fetch(`${srv.api}/users/${u.id}`, {
      method: "DELETE",
      headers: { authorization: `Bearer ${admin.token}` },
    });
    expect(del.status).toBe(200);
    await expectDetail(await get(u.id, admin.token), 404, "User not found");
  });

  test("malformed ids → 404 (superuser) or 403 {detail}, never a 500", async () => {
    const malformed = [
      "not-a-uuid",
      "123",
      `${alice.id}x`,
      alice.id.slice(0, 35),
      alice.id.replaceAll("-", ""),
      "00000000-0000-0000-0000-00000000000g",
      "%00",
      "%E0%A4%A", // broken percent-encoding
      encodeURIComponent("' OR 1=1 --"),
      "x".repeat(2000),
      "..%2F..%2Fetc%2Fpasswd",
    ];
    for (const id of malformed) {
      // A non-UUID is simply not a user: 404 for a superuser, 403 (not yours) for anyone else.
      const asAdmin = await get(id, admin.token);
      expect({ id, status: asAdmin.status }).toEqual({ id, status: 404 });
      await expectDetail(asAdmin, 404, "User not found");
      const asUser = await get(id, alice.token);
      expect({ id, status: asUser.status }).toEqual({ id, status: 403 });
      await expectDetail(asUser, 403, FORBIDDEN);
    }
  });

  test("no token, a bad token, a Basic header → 401", async () => {
    await expectDetail(await get(alice.id), 401);
    await expectDetail(await get(alice.id, "not.a.token"), 401);
    const basic = await fetch(`${srv.api}/users/${alice.id}`, {
      headers: { authorization: `Basic ${btoa(`${alice.email}:${alice.password}`)}` },
    });
    await expectDetail(basic, 401);
  });
});
