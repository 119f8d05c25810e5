// WebSocket authentication on /api/v1/ws against a real server: every refused token closes the
// socket with 1008 `Authentication failed`, the cause is logged, the token never is.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import {
  adminUser,
  Client,
  createUser,
  noneToken,
  SECRET,
  signToken,
  startServer,
  type TestServer,
  type TestUser,
} from "./helpers.ts";

let srv: TestServer;
let admin: TestUser;
let alice: TestUser;
let inactive: TestUser;
let deleted: TestUser;
/** Every token handed to the server in this file: none may ever appear in a log line. */
const seenTokens: string[] = [];

const now = () => Math.floor(Date.now() / 1000);
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

beforeAll(async () => {
  srv = await startServer({ BOT_ENABLED: "false" });
  admin = await adminUser(srv);
  [alice, inactive, deleted] = await Promise.all([
    createUser(srv),
    createUser(srv),
    createUser(srv),
  ]);
  seenTokens.push(admin.token, alice.token, inactive.token, deleted.token);
});
afterAll(() => srv.stop());

function wsUrl(tok?: string, format?: string): string {
  const q = new URLSearchParams();
  if (tok !== undefined) q.set("token", tok);
  if (format !== undefined) q.set("format", format);
  const s = q.toString();
  return s ? `${srv.ws}?${s}` : srv.ws;
}

/** Asserts none of the log lines contains `tok` (nor its signature segment). */
function expectNotLogged(tok: string, lines: string[] = srv.logs): void {
  const needles = [tok];
  const sig = tok.split(".")[2];
  if (sig && sig.length >= 16) needles.push(sig);
  for (const line of lines) for (const needle of needles) expect(line).not.toContain(needle);
}

/**
 * Connects with `tok` (query or bearer header), expects close 1008 `Authentication failed`,
 * a log line naming `cause`, and no log line with the token.
 */
async function expectRefused(
  tok: string | undefined,
  cause: string,
  via: "query" | "header" = "query",
): Promise<void> {
  if (tok) seenTokens.push(tok);
  const before = srv.logs.length;
  const client =
    via === "query"
      ? await Client.open(wsUrl(tok))
      : await Client.open(srv.ws, { headers: { authorization: `Bearer ${tok ?? ""}` } });
  const closed = await client.waitClose();
  expect(closed).toEqual({ code: 1008, reason: "Authentication failed" });
  expect(client.inbox).toEqual([]);
  const fresh = srv.logs.slice(before);
  expect(fresh.some((l) => l.includes(cause))).toBe(true);
  if (tok) expectNotLogged(tok);
}

describe("refused tokens close with 1008 Authentication failed", () => {
  test("missing token", async () => {
    await expectRefused(undefined, "missing token");
  });

  test("empty token parameter", async () => {
    await expectRefused("", "missing token");
  });

  test("garbage token", async () => {
    await expectRefused("not-a-jwt-at-all-garbage", "malformed token");
    await expectRefused("aaaa.bbbb.cccc", "malformed token");
  });

  test("token signed with another secret", async () => {
    const forged = signToken(
      { sub: alice.id, exp: now() + 3600 },
      "another-secret-that-is-also-long-enough-9876543210",
    );
    await expectRefused(forged, "bad signature");
  });

  test("token with a tampered payload (signature of another payload)", async () => {
    const good = signToken({ sub: alice.id, exp: now() + 3600 });
    const other = signToken({ sub: admin.id, exp: now() + 3600 });
    const [h, , s] = good.split(".");
    const [, p] = other.split(".");
    await expectRefused(`${h}.${p}.${s}`, "bad signature");
  });

  test("expired token", async () => {
    const expired = signToken({ sub: alice.id, exp: now() - 60 });
    await expectRefused(expired, "token expired");
  });

  test("alg none token", async () => {
    const none = noneToken({ sub: admin.id, exp: now() + 3600 });
    await expectRefused(none, "unsupported alg none");
  });

  test("token without exp", async () => {
    const noExp = signToken({ sub: alice.id });
    await expectRefused(noExp, "token has no exp");
  });

  test("sub that is not a UUID", async () => {
    const tok = signToken({ sub: "alice", exp: now() + 3600 });
    await expectRefused(tok, "sub is not a UUID");
  });

  test("unknown user id", async () => {
    const tok = signToken({ sub: crypto.randomUUID(), exp: now() + 3600 });
    await expectRefused(tok, "unknown user");
  });

  test("refused through the Authorization header too", async () => {
    const forged = signToken({ sub: alice.id, exp: now() + 3600 }, `${SECRET}-other`);
    await expectRefused(forged, "bad signature", "header");
    await expectRefused(signToken({ sub: alice.id, exp: now() - 5 }), "token expired", "header");
  });

  test("inactive user: live socket closed 1008, old token refused, REST 401", async () => {
    const live = await Client.connect(srv, inactive.token);
    const res = await fetch(`${srv.api}/users/${inactive.id}`, {
      method: "PATCH",
      headers: { authorization: `Bearer ${admin.token}`, "content-type": "application/json" },
      body: JSON.stringify({ is_active: false }),
    });
    expect(res.status).toBe(200);
    expect(((await res.json()) as { is_active: boolean }).is_active).toBe(false);
    const closed = await live.waitClose();
    expect(closed.code).toBe(1008);

    await expectRefused(inactive.token, "inactive user");
    await expectRefused(inactive.token, "inactive user", "header");

    const me = await fetch(`${srv.api}/users/me`, {
      headers: { authorization: `Bearer ${inactive.token}` },
    });
    expect(me.status).toBe(401);
    expect(Object.keys((await me.json()) as object)).toEqual(["detail"]);
  });

  test("deleted user: live socket closed 1008, old token refused, REST 401", async () => {
    const live = await Client.connect(srv, deleted.token);
    const res = await fetch(`${srv.api}/users/${deleted.id}`, {
      method: "DELETE",
      headers: { authorization: `Bearer ${admin.token}` },
    });
    expect(res.status).toBe(200);
    const closed = await live.waitClose();
    expect(closed.code).toBe(1008);

    await expectRefused(deleted.token, "unknown user");

    const me = await fetch(`${srv.api}/users/me`, {
      headers: { authorization: `Bearer ${deleted.token}` },
    });
    expect(me.status).toBe(401);
    expect(Object.keys((await me.json()) as object)).toEqual(["detail"]);
  });
});

describe("accepted connections", () => {
  test("?token= gets exactly one welcome event (json)", async () => {
    const client = await Client.open(wsUrl(alice.token));
    const welcome = await client.json();
    expect(Object.keys(welcome).sort()).toEqual(["text", "type", "user_id"]);
    expect(welcome.type).toBe("welcome");
    expect(welcome.user_id).toBe(alice.id);
    expect(welcome.text).toMatch(new RegExp(`^\\[System\\] Welcome, ${alice.id}! `));
    expect(welcome.text as string).not.toContain("\n");
    expect(await client.stray()).toEqual([]);
    expect(client.ws.readyState).toBe(WebSocket.OPEN);
    client.close();
  });

  test("?token= with format=text gets exactly one welcome line", async () => {
    const client = await Client.open(wsUrl(alice.token, "text"));
    const line = await client.next();
    expect(line).toMatch(new RegExp(`^\\[System\\] Welcome, ${alice.id}! `));
    expect(line).not.toContain("\n");
    expect(await client.stray()).toEqual([]);
    // The json event's `text` is exactly the line the text format sends.
    const json = await Client.open(wsUrl(alice.token, "json"));
    expect((await json.json()).text).toBe(line);
    json.close();
    client.close();
  });

  test("Authorization: Bearer header gets exactly one welcome event", async () => {
    const client = await Client.open(srv.ws, {
      headers: { authorization: `Bearer ${alice.token}` },
    });
    const welcome = await client.json();
    expect(welcome.type).toBe("welcome");
    expect(welcome.user_id).toBe(alice.id);
    expect(await client.stray()).toEqual([]);
    expect(client.ws.readyState).toBe(WebSocket.OPEN);
    // The connection is usable.
    client.send({ type: "list_rooms" });
    const rooms = await client.json();
    expect(rooms.type).toBe("rooms");
    client.close();
  });

  test("Authorization: Bearer header with format=text", async () => {
    const client = await Client.open(`${srv.ws}?format=text`, {
      headers: { authorization: `Bearer ${alice.token}` },
    });
    expect(await client.next()).toMatch(new RegExp(`^\\[System\\] Welcome, ${alice.id}! `));
    expect(await client.stray()).toEqual([]);
    client.close();
  });

  test("a hand-signed valid token (sub UUID, exp in the future) is accepted", async () => {
    const tok = signToken({ sub: alice.id, exp: now() + 600 });
    seenTokens.push(tok);
    const client = await Client.open(wsUrl(tok));
    const welcome = await client.json();
    expect(welcome).toMatchObject({ type: "welcome", user_id: alice.id });
    expect(UUID.test(welcome.user_id as string)).toBe(true);
    client.close();
  });

  test("format=json is the default and explicit json works", async () => {
    const client = await Client.open(wsUrl(alice.token, "json"));
    expect((await client.json()).type).toBe("welcome");
    client.close();
  });
});

describe("format and plain HTTP", () => {
  test("?format=xml closes 1008 Unsupported format", async () => {
    const client = await Client.open(wsUrl(alice.token, "xml"));
    expect(await client.waitClose()).toEqual({ code: 1008, reason: "Unsupported format" });
    expect(client.inbox).toEqual([]);
  });

  test("?format=TEXT (not an exact value) closes 1008 Unsupported format", async () => {
    const client = await Client.open(wsUrl(alice.token, "TEXT"));
    expect(await client.waitClose()).toEqual({ code: 1008, reason: "Unsupported format" });
  });

  test("plain GET /api/v1/ws without upgrade → 426 {detail}", async () => {
    for (const url of [srv.ws.replace("ws://", "http://"), `${srv.api}/ws?token=${alice.token}`]) {
      const res = await fetch(url);
      expect(res.status).toBe(426);
      const body = (await res.json()) as Record<string, unknown>;
      expect(Object.keys(body)).toEqual(["detail"]);
      expect(typeof body.detail).toBe("string");
    }
  });
});

test("refused sockets are not counted as connections", async () => {
  const res = await fetch(`${srv.api}/ws/health`);
  expect(((await res.json()) as { active_connections: number }).active_connections).toBe(0);
});

test("no log line ever contains a token", () => {
  expect(seenTokens.length).toBeGreaterThan(10);
  for (const tok of seenTokens) if (tok) expectNotLogged(tok);
});
