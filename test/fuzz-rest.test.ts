// Property-based fuzzing of every REST endpoint against a live server (fast-check): random and
// mutated bodies (JSON, forms, garbage, wrong content types), query strings, path ids and
// headers, with no token, a user's, a superuser's or a forged one. Properties: no 500, an answer
// within 5 s, every error is `{"detail": string}` with a status the contract names, no stack
// trace or schema in any body, and the server still serves a normal request afterwards.
// FUZZ_SEED replays another run; the seed and the counterexample are printed on failure.
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import fc from "fast-check";
import {
  adminUser,
  createUser,
  signToken,
  startServer,
  type TestServer,
  type TestUser,
} from "./helpers.ts";

setDefaultTimeout(180_000);

const SEED = Number(process.env.FUZZ_SEED ?? 20_261_202);
const RUNS = Number(process.env.FUZZ_RUNS_REST ?? 1500);
/** What the contract lets REST answer (426: a plain request to the WebSocket endpoint). */
const STATUSES = new Set([200, 400, 401, 403, 404, 405, 422, 426, 429]);
const LEAK =
  /\bat [\w.<>]+ \(|\.ts:\d+|node_modules|TypeError|SyntaxError|ReferenceError|anyOf|\$id|"pattern"|\[Kind\]/;

interface Req {
  method: string;
  path: string;
  query: string;
  auth: "none" | "user" | "admin" | "forged" | "garbage";
  contentType: string | undefined;
  body: string | undefined;
  header: [string, string] | undefined;
}

const wrong = fc.oneof(
  fc.jsonValue({ maxDepth: 3 }),
  fc.constantFrom(1e308, -1, 0, 2 ** 53 + 1, 1.5, null, true, "", "x".repeat(300)),
);
const text = fc.oneof(
  fc.string({ unit: "binary", maxLength: 40 }),
  fc.string({ maxLength: 20 }),
  fc.constantFrom(
    "",
    "a@b.c",
    "nobody@example.com",
    "password-123",
    "\u0000",
    "%00",
    "../../etc/passwd",
  ),
);
const email = fc.oneof(fc.emailAddress(), text, wrong);
const password = fc.oneof(
  fc.string({ minLength: 8, maxLength: 20 }),
  text,
  wrong,
  fc.constant("p".repeat(129)),
);
const userBody = fc
  .record(
    {
      email,
      password,
      full_name: fc.oneof(text, wrong, fc.constant("n".repeat(256))),
      is_superuser: fc.oneof(fc.constant(false), wrong),
      is_active: fc.oneof(fc.constant(true), wrong),
    },
    { requiredKeys: [] },
  )
  .map((r) => r as Record<string, unknown>);
const jsonBody = fc.oneof(
  userBody.map((b) => JSON.stringify(b)),
  fc.record({ content: fc.oneof(text, wrong) }, { requiredKeys: [] }).map((b) => JSON.stringify(b)),
  fc.json({ maxDepth: 4 }),
  fc.integer({ min: 1, max: 20_000 }).map((n) => `${"[".repeat(n)}${"]".repeat(n)}`),
  text,
);
const formBody = fc
  .record({ username: email, password }, { requiredKeys: [] })
  .map((r) =>
    new URLSearchParams(
      Object.entries(r).map(([k, v]): [string, string] => [
        k,
        typeof v === "string" ? v : JSON.stringify(v),
      ]),
    ).toString(),
  );
const body = fc.oneof(jsonBody, formBody, fc.constant(undefined), text);
const contentType = fc.constantFrom(
  "application/json",
  "application/x-www-form-urlencoded",
  "multipart/form-data; boundary=x",
  "text/plain",
  "application/json; charset=utf-16",
  "application/octet-stream",
  undefined,
);
const id = fc.oneof(
  fc.uuid(),
  text.map(encodeURIComponent),
  fc.constantFrom("VICTIM", "%2e%2e", "..", "0"),
);
const path = fc.oneof(
  {
    weight: 6,
    arbitrary: fc.constantFrom(
      "/login/access-token",
      "/users/signup",
      "/users/me",
      "/users/",
      "/users",
      "/ws/health",
      "/ws/stats",
      "/ws/broadcast",
      "/ws",
      "/ws/",
    ),
  },
  { weight: 3, arbitrary: id.map((x) => `/users/${x}`) },
  { weight: 1, arbitrary: text.map((t) => `/${encodeURIComponent(t)}`) },
);
const query = fc.oneof(
  fc.constant(""),
  fc
    .record(
      {
        skip: fc.oneof(fc.nat(), text, wrong),
        limit: fc.oneof(fc.nat(2000), text, wrong),
        token: text,
        format: text,
      },
      { requiredKeys: [] },
    )
    .map(
      (r) =>
        `?${new URLSearchParams(Object.entries(r).map(([k, v]): [string, string] => [k, String(v)])).toString()}`,
    ),
  text.map((t) => `?${t}`),
);
const printable = fc.string({
  unit: fc.integer({ min: 0x20, max: 0x7e }).map((c) => String.fromCharCode(c)),
  maxLength: 200,
});
const header = fc.option(
  fc.tuple(
    fc.constantFrom(
      "authorization",
      "content-length-x",
      "x-forwarded-for",
      "origin",
      "accept",
      "cookie",
      "x-random",
    ),
    fc.oneof(
      printable,
      fc.constantFrom("Bearer", "Bearer ", "Basic abc", "bearer  x.y.z", "a".repeat(8000)),
    ),
  ),
  { nil: undefined },
);
/** The contract's endpoints, method and path (ids filled in by `id`). */
const endpoint = fc.oneof(
  fc.constantFrom(
    ["POST", "/login/access-token"],
    ["POST", "/users/signup"],
    ["GET", "/users/me"],
    ["GET", "/users/"],
    ["GET", "/users"],
    ["POST", "/users/"],
    ["GET", "/ws/health"],
    ["GET", "/ws/stats"],
    ["POST", "/ws/broadcast"],
    ["GET", "/ws"],
  ),
  fc.tuple(
    fc.constantFrom("GET", "PATCH", "DELETE"),
    id.map((x) => `/users/${x}`),
  ),
);
const anything = fc.tuple(
  fc.constantFrom("GET", "POST", "PATCH", "DELETE", "PUT", "OPTIONS", "HEAD"),
  path,
);
const request: fc.Arbitrary<Req> = fc
  .record({
    at: fc.oneof({ weight: 3, arbitrary: endpoint }, { weight: 1, arbitrary: anything }),
    query,
    auth: fc.constantFrom("none", "user", "admin", "admin", "forged", "garbage"),
    payload: fc.oneof(
      fc.tuple(fc.constant("application/json"), jsonBody),
      fc.tuple(fc.constant("application/x-www-form-urlencoded"), formBody),
      fc.tuple(contentType, body),
    ),
    header,
  })
  .map(({ at, payload, ...r }) => ({
    ...r,
    method: at[0] as string,
    path: at[1] as string,
    contentType: payload[0],
    body: payload[1],
  }));

describe("fuzzed REST requests against a live server", () => {
  let srv: TestServer;
  let admin: TestUser;
  let user: TestUser;
  let victims: TestUser[];
  beforeAll(async () => {
    srv = await startServer({ BOT_ENABLED: "false", LOG_LEVEL: "info" });
    admin = await adminUser(srv);
    user = await createUser(srv);
    victims = await Promise.all(Array.from({ length: 3 }, () => createUser(srv)));
  });
  afterAll(() => srv.stop());

  test(`${RUNS} requests: no 500, no hang, {detail} errors, nothing leaked`, async () => {
    const statuses = new Map<number, number>();
    let victim = 0;
    const property = fc.asyncProperty(request, async (r) => {
      const headers: Record<string, string> = {};
      const tok = {
        none: undefined,
        user: user.token,
        admin: admin.token,
        forged: signToken(
          { sub: admin.id, exp: Math.floor(Date.now() / 1000) + 60 },
          "x".repeat(40),
        ),
        garbage: "not.a.token",
      }[r.auth];
      if (tok !== undefined) headers.authorization = `Bearer ${tok}`;
      if (r.contentType !== undefined) headers["content-type"] = r.contentType;
      if (r.header) headers[r.header[0]] = r.header[1];
      // The admin deletes and deactivates only the victims, never the users the run relies on.
      const target = victims[victim++ % victims.length] as TestUser;
      const p = r.path.replace("VICTIM", target.id);
      const url = `${srv.api}${p}${r.query}`;
      const withBody = r.body !== undefined && !["GET", "HEAD"].includes(r.method);
      let res: Response;
      try {
        res = await fetch(url, {
          method: r.method,
          headers,
          ...(withBody ? { body: r.body } : {}),
          signal: AbortSignal.timeout(5000),
        });
      } catch (e) {
        // fetch itself refused the request (a header it will not send): nothing reached the server.
        if (e instanceof TypeError && !String(e.message).includes("timed out")) return;
        throw new Error(`no answer within 5 s to ${r.method} ${p}${r.query}: ${String(e)}`);
      }
      const text = await res.text();
      statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1);
      const where = `${r.method} ${p}${r.query} (${r.contentType}, auth ${r.auth}) → ${res.status} ${text.slice(0, 300)}`;
      if (!STATUSES.has(res.status)) throw new Error(`status ${res.status}: ${where}`);
      if (LEAK.test(text)) throw new Error(`leak: ${where}`);
      if (res.status >= 400 && r.method !== "HEAD") {
        let parsed: unknown;
        try {
          parsed = JSON.parse(text);
        } catch {
          throw new Error(`error body is not JSON: ${where}`);
        }
        const keys = Object.keys(parsed as object);
        if (
          keys.length !== 1 ||
          keys[0] !== "detail" ||
          typeof (parsed as { detail: unknown }).detail !== "string"
        )
          throw new Error(`error body is not {detail}: ${where}`);
      }
    });
    console.log(`rest fuzz: FUZZ_SEED=${SEED}, ${RUNS} requests`);
    const details = await fc.check(property, { seed: SEED, numRuns: RUNS });
    console.log(`rest fuzz: statuses ${JSON.stringify(Object.fromEntries([...statuses].sort()))}`);
    if (details.failed) {
      console.error(
        `rest fuzz FAILED — replay with FUZZ_SEED=${SEED}:\n${(fc.defaultReportMessage(details) ?? "").slice(0, 3000)}`,
      );
      throw new Error(`rest fuzz: property failed (FUZZ_SEED=${SEED})`);
    }
    // Still serving, and nothing was logged as an error (no handler crashed).
    const me = await fetch(`${srv.api}/users/me`, {
      headers: { authorization: `Bearer ${user.token}` },
    });
    expect(me.status).toBe(200);
    const errors = srv.logs.filter((l) => (JSON.parse(l) as { level: string }).level === "error");
    expect(errors).toEqual([]);
  });
});
