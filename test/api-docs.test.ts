// The API documents of a real server: the AsyncAPI document parses with @asyncapi/parser and
// names every command of the handler registry, every event and every error code (examples
// checked against the validators the server runs); the OpenAPI document lists every route with
// responses, and real answers match the schemas it publishes; /openapi renders offline.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync } from "node:fs";
import { DiagnosticSeverity, Parser } from "@asyncapi/parser";
import type { TSchema } from "@sinclair/typebox";
import { Type } from "@sinclair/typebox";
import { Value } from "@sinclair/typebox/value";
import { chromium } from "playwright-core";
import { asyncApiDocument } from "../src/asyncapi.ts";
import { ERROR_CODES, Events } from "../src/protocol.ts";
import {
  AccessToken,
  BroadcastSent,
  ErrorDetail,
  Health,
  MessageReply,
  Stats,
  UserPublic,
  UsersPublic,
} from "../src/rest/schemas.ts";
import { VERSION } from "../src/version.ts";
import { handler } from "../src/ws/handler.ts";
import { defaultHandlers } from "../src/ws/handlers.ts";
import {
  ADMIN_EMAIL,
  ADMIN_PASSWORD,
  createUser,
  startServer,
  type TestServer,
  token,
} from "./helpers.ts";

type Json = Record<string, unknown>;

const CHROMIUM = ["/usr/bin/chromium", "/usr/bin/chromium-browser"].find((p) => existsSync(p));
if (!CHROMIUM)
  console.warn("skip: no Chromium at /usr/bin/chromium; the /openapi rendering test is skipped");

let srv: TestServer;
let base = "";
let openapiDoc: Json;
let asyncapiDoc: Json;

beforeAll(async () => {
  srv = await startServer({ BOT_ENABLED: "false" });
  base = `http://127.0.0.1:${srv.port}`;
  openapiDoc = (await (await fetch(`${base}/openapi/json`)).json()) as Json;
  asyncapiDoc = (await (await fetch(`${base}/api/v1/asyncapi.json`)).json()) as Json;
});
afterAll(() => srv.stop());

const obj = (v: unknown): Json => {
  expect(typeof v === "object" && v !== null && !Array.isArray(v)).toBe(true);
  return v as Json;
};

/** Every `$ref` string found anywhere in `value`. */
function refs(value: unknown, out: string[] = []): string[] {
  if (Array.isArray(value)) for (const v of value) refs(v, out);
  else if (value && typeof value === "object")
    for (const [k, v] of Object.entries(value)) {
      if (k === "$ref" && typeof v === "string") out.push(v);
      else refs(v, out);
    }
  return out;
}

/** What a JSON pointer (`#/a/b`) names in `doc`, or undefined. */
function resolve(doc: Json, pointer: string): unknown {
  let at: unknown = doc;
  for (const part of pointer.replace(/^#\//, "").split("/"))
    at = at && typeof at === "object" ? (at as Json)[part.replaceAll("~1", "/")] : undefined;
  return at;
}

/** Commands of an AsyncAPI document that carry no summary or example (undocumented). */
function undocumentedCommands(doc: Json): string[] {
  const messages = obj(obj(doc.components).messages);
  return Object.entries(messages)
    .filter(([key]) => key.startsWith("command."))
    .filter(([, m]) => !(m as Json).summary || !Array.isArray((m as Json).examples))
    .map(([key]) => key.slice("command.".length));
}

describe("AsyncAPI document (/api/v1/asyncapi.json)", () => {
  test("is a valid AsyncAPI 3.0 document: @asyncapi/parser reports no error", async () => {
    expect(asyncapiDoc.asyncapi).toBe("3.0.0");
    const { document, diagnostics } = await new Parser().parse(JSON.stringify(asyncapiDoc));
    const bad = diagnostics.filter((d) => d.severity === DiagnosticSeverity.Error);
    expect(bad.map((d) => `${d.code}: ${d.message} at ${d.path.join(".")}`)).toEqual([]);
    expect(document).toBeDefined();
    expect(document?.info().version()).toBe(VERSION);
    expect(document?.channels().get("ws")?.address()).toBe("/api/v1/ws");
    // Every message the parser sees has a payload.
    const parsed = document?.allMessages().all() ?? [];
    expect(parsed.length).toBe(Object.keys(obj(obj(asyncapiDoc.components).messages)).length);
    for (const m of parsed) expect(m.hasPayload()).toBe(true);
  }, 30_000);

  test("every command of the server's handler registry, documented, with an example its validator accepts", () => {
    const messages = obj(obj(asyncapiDoc.components).messages);
    const operations = obj(asyncapiDoc.operations);
    const registry = srv.kabar.hub.handlers;
    expect(registry.size).toBeGreaterThanOrEqual(11);
    for (const [type, h] of registry) {
      const m = obj(messages[`command.${type}`]);
      const payload = obj(m.payload);
      expect(obj(obj(payload.properties).type).const).toBe(type);
      expect(payload.required).toContain("type");
      const examples = m.examples as Array<{ payload: Json }>;
      expect(examples.length, `${type} has an example`).toBeGreaterThan(0);
      for (const e of examples) {
        expect(e.payload.type).toBe(type);
        expect(h.check.Check(e.payload), `${type}'s example passes its handler's schema`).toBe(
          true,
        );
      }
      expect(obj(operations[`receive.${type}`]).action).toBe("receive");
    }
    expect(undocumentedCommands(asyncapiDoc)).toEqual([]);
    // The 1.1 additions are there with their fields.
    const join = obj(obj(obj(messages["command.join_room"]).payload).properties);
    expect(Object.keys(join)).toEqual(expect.arrayContaining(["room_name", "since", "presence"]));
    const since = obj(join.since);
    expect(Object.keys(obj(since.properties))).toEqual(["epoch", "seq"]);
    for (const c of ["history", "presence", "typing"])
      expect(messages[`command.${c}`]).toBeDefined();
  });

  test("a command added to the registry without a description shows up as undocumented", () => {
    const handlers = defaultHandlers();
    handlers.set(
      "ping",
      handler(Type.Object({ nonce: Type.String() }), () => {}),
    );
    const doc = asyncApiDocument(handlers, VERSION);
    const payload = obj(obj(obj(obj(doc.components).messages)["command.ping"]).payload);
    expect(obj(payload.properties).nonce).toEqual({ type: "string" });
    expect(undocumentedCommands(doc)).toEqual(["ping"]);
  });

  test("every server event, with an example that matches its schema, and its text line", () => {
    const messages = obj(obj(asyncapiDoc.components).messages);
    for (const [name, schema] of Object.entries(Events)) {
      const m = obj(messages[`event.${name}`]);
      expect(obj(m.payload).properties).toBeDefined();
      const examples = m.examples as Array<{ payload: Json }>;
      expect(examples.length).toBeGreaterThan(0);
      for (const e of examples)
        expect(Value.Check(schema as TSchema, e.payload), `${name} example`).toBe(true);
      expect(m.description as string).toContain("Text format:");
      expect(obj(obj(asyncapiDoc.operations)[`send.${name}`]).action).toBe("send");
    }
    const joined = obj(obj(obj(messages["event.room_joined"]).payload).properties);
    expect(Object.keys(joined)).toEqual(expect.arrayContaining(["epoch", "seq", "recovered"]));
    const message = obj(obj(obj(messages["event.message"]).payload).properties);
    expect(Object.keys(message)).toEqual(expect.arrayContaining(["seq", "epoch"]));
  });

  test("every error code of protocol.ts: in the schema, described, with an example", () => {
    const error = obj(obj(obj(asyncapiDoc.components).messages)["event.error"]);
    const code = obj(obj(obj(error.payload).properties).code);
    const inSchema = (code.anyOf as Array<{ const: string }>).map((c) => c.const);
    expect(inSchema.sort()).toEqual([...ERROR_CODES].sort());
    const examples = (error.examples as Array<{ payload: { code: string } }>).map(
      (e) => e.payload.code,
    );
    for (const c of ERROR_CODES) {
      expect(examples, `an example of ${c}`).toContain(c);
      expect(error.description as string).toContain(`\`${c}\``);
    }
  });

  test("connecting: both formats, the token in the query or a Bearer header, the close codes", () => {
    const channel = obj(obj(asyncapiDoc.channels).ws);
    const ws = obj(obj(channel.bindings).ws);
    const query = obj(obj(ws.query).properties);
    expect(obj(query.format).enum).toEqual(["json", "text"]);
    expect(query.token).toBeDefined();
    expect(obj(obj(ws.headers).properties).Authorization).toBeDefined();
    const schemes = obj(obj(asyncapiDoc.components).securitySchemes);
    expect(obj(schemes.token)).toMatchObject({ type: "httpApiKey", in: "query", name: "token" });
    expect(obj(schemes.bearer)).toMatchObject({ type: "http", scheme: "bearer" });
    const text = channel.description as string;
    for (const c of ["1008", "1009", "1001", "Authentication failed", "Unsupported format"])
      expect(text).toContain(c);
    // Every reference resolves inside the document.
    for (const r of refs(asyncapiDoc)) expect(resolve(asyncapiDoc, r), r).toBeDefined();
  });
});

/** Elysia path (`/users/:id`) → OpenAPI path (`/users/{id}`). */
const openapiPath = (path: string) => path.replace(/:([^/]+)/g, "{$1}");

/** The REST endpoints of the spec (docs/protocol.md, REST), written out. */
const SPEC_ENDPOINTS = [
  "post /api/v1/login/access-token",
  "post /api/v1/users/signup",
  "get /api/v1/users/me",
  "get /api/v1/users",
  "post /api/v1/users",
  "get /api/v1/users/{id}",
  "patch /api/v1/users/{id}",
  "delete /api/v1/users/{id}",
  "get /api/v1/ws/health",
  "get /api/v1/ws/stats",
  "post /api/v1/ws/broadcast",
  "get /api/v1/ws",
  "get /api/v1/asyncapi.json",
];

function operation(method: string, path: string): Json {
  const item = obj(obj(openapiDoc.paths)[path]);
  return obj(item[method]);
}

describe("OpenAPI document (/openapi/json)", () => {
  test("is OpenAPI 3 with info, and every reference resolves", () => {
    expect(openapiDoc.openapi as string).toMatch(/^3\.\d+\.\d+$/);
    const info = obj(openapiDoc.info);
    expect(info.title).toBe("Kabar REST API");
    expect(info.version).toBe(VERSION);
    const all = refs(openapiDoc);
    expect(all.length).toBeGreaterThan(10);
    for (const r of all) expect(resolve(openapiDoc, r), r).toBeDefined();
  });

  test("lists every route of the app and every endpoint of the spec, each with responses", () => {
    const paths = obj(openapiDoc.paths);
    const listed = new Set<string>();
    for (const [path, item] of Object.entries(paths))
      for (const method of Object.keys(obj(item))) listed.add(`${method} ${path}`);
    for (const r of srv.kabar.app.routes) {
      const hidden = (r.hooks as { detail?: { hide?: boolean } }).detail?.hide === true;
      const key = `${r.method.toLowerCase()} ${openapiPath(r.path)}`;
      if (!hidden) expect(listed.has(key), `${key} is documented`).toBe(true);
    }
    for (const e of SPEC_ENDPOINTS) expect(listed.has(e), `${e} is documented`).toBe(true);
    const ids = new Set<string>();
    const schemes = obj(obj(openapiDoc.components).securitySchemes);
    for (const key of listed) {
      const [method, path] = key.split(" ") as [string, string];
      const op = operation(method, path);
      expect(typeof op.summary, `${key} has a summary`).toBe("string");
      expect(ids.has(op.operationId as string), `${key}: unique operationId`).toBe(false);
      ids.add(op.operationId as string);
      const responses = obj(op.responses);
      const statuses = Object.keys(responses);
      expect(
        statuses.some((s) => /^[12]\d\d$/.test(s)),
        `${key} has a success response`,
      ).toBe(true);
      for (const s of statuses) expect(typeof obj(responses[s]).description).toBe("string");
      for (const s of statuses.filter((x) => /^[45]/.test(x)))
        expect(refs(responses[s]), `${key} ${s} is {"detail"}`).toEqual([
          "#/components/schemas/ErrorDetail",
        ]);
      // Path parameters are declared; security names a defined scheme and documents the 401.
      for (const m of path.matchAll(/\{([^}]+)\}/g)) {
        const params = (op.parameters as Array<{ name: string; in: string }> | undefined) ?? [];
        expect(
          params.some((p) => p.name === m[1] && p.in === "path"),
          `${key} ${m[1]}`,
        ).toBe(true);
      }
      for (const s of (op.security as Array<Json> | undefined) ?? []) {
        for (const name of Object.keys(s)) expect(schemes[name]).toBeDefined();
        expect(responses["401"], `${key} documents 401`).toBeDefined();
      }
    }
    expect(operation("get", "/api/v1/users/me").security).toEqual([{ bearer: [] }]);
    expect(operation("get", "/api/v1/ws/health").security).toBeUndefined();
  });

  test("request bodies are the schemas the routes validate with", () => {
    const login = obj(operation("post", "/api/v1/login/access-token").requestBody);
    const form = obj(obj(login.content)["application/x-www-form-urlencoded"]);
    expect(obj(form.schema).required).toEqual(["username", "password"]);
    const create = obj(
      obj(obj(operation("post", "/api/v1/users").requestBody).content)["application/json"],
    );
    const props = obj(obj(create.schema).properties);
    expect(obj(props.password)).toMatchObject({ minLength: 8, maxLength: 128 });
    expect(Object.keys(props)).toEqual(
      expect.arrayContaining(["email", "password", "full_name", "is_superuser", "is_active"]),
    );
    const list = operation("get", "/api/v1/users").parameters as Array<{ name: string }>;
    expect(list.map((p) => p.name).sort()).toEqual(["limit", "skip"]);
  });

  test("real answers have a documented status and match the published schema", async () => {
    const schemas: Record<string, TSchema> = {
      AccessToken,
      BroadcastSent,
      ErrorDetail,
      Health,
      Message: MessageReply,
      Stats,
      User: UserPublic,
      Users: UsersPublic,
    };
    // The published components are these schemas.
    const published = obj(obj(openapiDoc.components).schemas);
    for (const [name, s] of Object.entries(schemas))
      expect(published[name]).toEqual(JSON.parse(JSON.stringify(s)));

    const admin = await token(srv, ADMIN_EMAIL, ADMIN_PASSWORD);
    const auth = { authorization: `Bearer ${admin}`, "content-type": "application/json" };
    const user = await createUser(srv);
    const check = async (method: string, path: string, res: Response) => {
      const op = operation(method, path.replace(/[0-9a-f-]{36}/, "{id}").replace(/\?.*/, ""));
      const responses = obj(op.responses);
      expect(Object.keys(responses), `${method} ${path}: ${res.status} is documented`).toContain(
        String(res.status),
      );
      const documented = obj(responses[String(res.status)]);
      const schemaRef = refs(documented)[0] as string;
      const body = await res.json();
      const schema = schemas[schemaRef.split("/").pop() as string] as TSchema;
      expect(
        Value.Check(schema, body),
        `${method} ${path} ${res.status}: ${JSON.stringify(body)}`,
      ).toBe(true);
    };
    const call = (
      method: string,
      path: string,
      body?: unknown,
      headers: Record<string, string> = auth,
    ) =>
      fetch(`${base}${path}`, {
        method: method.toUpperCase(),
        headers,
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      });

    await check(
      "post",
      "/api/v1/login/access-token",
      await fetch(`${base}/api/v1/login/access-token`, {
        method: "POST",
        body: new URLSearchParams({ username: ADMIN_EMAIL, password: ADMIN_PASSWORD }),
      }),
    );
    await check(
      "post",
      "/api/v1/login/access-token",
      await fetch(`${base}/api/v1/login/access-token`, {
        method: "POST",
        body: new URLSearchParams({ username: ADMIN_EMAIL, password: "wrong-password" }),
      }),
    );
    await check(
      "post",
      "/api/v1/users/signup",
      await call(
        "post",
        "/api/v1/users/signup",
        { email: "new@example.com", password: "password-123" },
        { "content-type": "application/json" },
      ),
    );
    await check(
      "post",
      "/api/v1/users/signup",
      await call(
        "post",
        "/api/v1/users/signup",
        { email: "new@example.com", password: "password-123" },
        { "content-type": "application/json" },
      ),
    );
    await check(
      "post",
      "/api/v1/users/signup",
      await call(
        "post",
        "/api/v1/users/signup",
        { email: "bad", password: "x" },
        { "content-type": "application/json" },
      ),
    );
    // A 422 is one line naming the field: no schema, no echo of the input.
    const bad = await call(
      "post",
      "/api/v1/users/signup",
      { email: "bad", password: "password-123" },
      { "content-type": "application/json" },
    );
    expect(await bad.json()).toEqual({ detail: "email: must be a valid email address" });
    await check("get", "/api/v1/users/me", await call("get", "/api/v1/users/me"));
    await check("get", "/api/v1/users/me", await call("get", "/api/v1/users/me", undefined, {}));
    await check("get", "/api/v1/users", await call("get", "/api/v1/users?limit=5"));
    await check(
      "get",
      "/api/v1/users",
      await call("get", "/api/v1/users", undefined, { authorization: `Bearer ${user.token}` }),
    );
    await check(
      "post",
      "/api/v1/users",
      await call("post", "/api/v1/users", { email: "made@example.com", password: "password-123" }),
    );
    await check("get", `/api/v1/users/${user.id}`, await call("get", `/api/v1/users/${user.id}`));
    await check(
      "get",
      `/api/v1/users/${crypto.randomUUID()}`,
      await call("get", `/api/v1/users/${crypto.randomUUID()}`),
    );
    await check(
      "patch",
      `/api/v1/users/${user.id}`,
      await call("patch", `/api/v1/users/${user.id}`, { full_name: "Renamed" }),
    );
    await check(
      "delete",
      `/api/v1/users/${user.id}`,
      await call("delete", `/api/v1/users/${user.id}`),
    );
    await check("get", "/api/v1/ws/health", await call("get", "/api/v1/ws/health", undefined, {}));
    await check("get", "/api/v1/ws/stats", await call("get", "/api/v1/ws/stats"));
    await check(
      "post",
      "/api/v1/ws/broadcast",
      await call("post", "/api/v1/ws/broadcast", { content: "hello" }),
    );
    await check(
      "post",
      "/api/v1/ws/broadcast",
      await call("post", "/api/v1/ws/broadcast", { content: "   " }),
    );
    await check("get", "/api/v1/ws", await call("get", "/api/v1/ws", undefined, {}));
  });
});

describe("/openapi (the reader)", () => {
  test("answers 200 text/html and loads nothing from another host", async () => {
    const res = await fetch(`${base}/openapi`);
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toStartWith("text/html");
    const html = await res.text();
    expect(html).toContain("/openapi/json");
    expect(html).not.toMatch(/(src|href)=["']?(https?:)?\/\//i);
  });

  test.skipIf(!CHROMIUM)(
    "renders every operation in Chromium with the network to other hosts cut",
    async () => {
      const browser = await chromium.launch({
        executablePath: "/usr/bin/chromium",
        args: ["--no-sandbox"],
      });
      try {
        const page = await browser.newPage();
        const foreign: string[] = [];
        await page.route("**/*", (route) => {
          const url = new URL(route.request().url());
          if (url.hostname === "127.0.0.1") return route.continue();
          foreign.push(url.href);
          return route.abort();
        });
        await page.goto(`${base}/openapi`);
        await page.waitForSelector("details.op", { timeout: 10_000 });
        const count = await page.locator("details.op").count();
        let expected = 0;
        for (const item of Object.values(obj(openapiDoc.paths)))
          expected += Object.keys(obj(item)).length;
        expect(count).toBe(expected);
        expect(await page.locator("h3#schema-User").count()).toBe(1);
        expect(foreign).toEqual([]);
      } finally {
        await browser.close();
      }
    },
    30_000,
  );
});
