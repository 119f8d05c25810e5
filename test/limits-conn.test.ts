// Connection limits against a real server: frame size, sockets per user, the live-connection
// counter, token expiry while connected, and deactivated or deleted users.
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import {
  ADMIN_EMAIL,
  ADMIN_PASSWORD,
  Client,
  createUser,
  signToken,
  startServer,
  type TestServer,
  token,
} from "./helpers.ts";

// Real servers, argon2 logins and waits for timers: generous per-test limits.
setDefaultTimeout(20_000);

type Event = Record<string, unknown>;

/** Polls `cond` every 20 ms until true or `ms` passed; returns its last value. */
async function until(cond: () => boolean | Promise<boolean>, ms = 3000): Promise<boolean> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if (await cond()) return true;
    await Bun.sleep(20);
  }
  return cond();
}

/** Polls `get` every 20 ms until it returns `want` or `ms` passed; returns its last value. */
async function untilValue<T>(get: () => Promise<T>, want: T, ms = 3000): Promise<T> {
  const deadline = Date.now() + ms;
  let value = await get();
  while (value !== want && Date.now() < deadline) {
    await Bun.sleep(20);
    value = await get();
  }
  return value;
}

async function activeConnections(srv: TestServer): Promise<number> {
  const res = await fetch(`${srv.api}/ws/health`);
  expect(res.status).toBe(200);
  const body = (await res.json()) as { status: string; active_connections: number };
  expect(body.status).toBe("healthy");
  return body.active_connections;
}

/** A frame of exactly `bytes` bytes: a `message` whose content pads it out. */
function messageFrame(bytes: number): string {
  const frame = `{"type":"message","content":"${"x".repeat(bytes - 31)}"}`;
  expect(Buffer.byteLength(frame)).toBe(bytes);
  return frame;
}

describe("WS_MAX_PAYLOAD_BYTES=1024", () => {
  let srv: TestServer;
  beforeAll(async () => {
    srv = await startServer({ WS_MAX_PAYLOAD_BYTES: "1024", BOT_ENABLED: "false" });
  });
  afterAll(() => srv.stop());

  test("frames up to the limit are served; a larger frame closes the socket with 1009", async () => {
    const u = await createUser(srv);
    const c = await Client.connect(srv, u.token);
    const other = await Client.connect(srv, u.token);
    await c.ask({ type: "create_room", room_name: "big" });
    c.send({ type: "join_room", room_name: "big" });
    await c.take(2);

    for (const size of [1000, 1024]) {
      const echo = JSON.parse(await c.ask(messageFrame(size))) as Event;
      expect(echo.type).toBe("message");
      expect(echo.content).toBe("x".repeat(size - 31));
    }

    c.send(messageFrame(1025));
    expect((await c.waitClose()).code).toBe(1009);

    // The user's other socket is untouched; a much larger frame closes it too.
    expect(JSON.parse(await other.ask({ type: "list_rooms" })).type).toBe("rooms");
    other.send(messageFrame(5000));
    expect((await other.waitClose()).code).toBe(1009);
    expect(await until(() => srv.kabar.hub.connections === 0)).toBe(true);
  });
});

describe("MAX_CONNECTIONS_PER_USER=2", () => {
  let srv: TestServer;
  beforeAll(async () => {
    srv = await startServer({ MAX_CONNECTIONS_PER_USER: "2" });
  });
  afterAll(() => srv.stop());

  test("a third socket of one user is closed with 1008 'Too many connections'", async () => {
    const alice = await createUser(srv);
    const bob = await createUser(srv);
    const a1 = await Client.connect(srv, alice.token);
    const a2 = await Client.connect(srv, alice.token, "text");

    const a3 = await Client.open(`${srv.ws}?token=${alice.token}`);
    expect(await a3.waitClose()).toEqual({ code: 1008, reason: "Too many connections" });
    expect(a3.inbox.filter((f) => f.includes("welcome"))).toEqual([]);

    // Another user still gets in, and the refused socket was never counted.
    const b1 = await Client.connect(srv, bob.token);
    const b2 = await Client.connect(srv, bob.token);
    expect(await activeConnections(srv)).toBe(4);

    // The first two keep working.
    expect(JSON.parse(await a1.ask({ type: "list_rooms" })).type).toBe("rooms");
    expect(await a2.ask({ type: "list_rooms" })).toBe("[System] No active rooms.");

    // After one closes, a new one is accepted.
    a1.close();
    await a1.waitClose();
    expect(await until(() => srv.kabar.hub.connections === 3)).toBe(true);
    const a4 = await Client.open(`${srv.ws}?token=${alice.token}`);
    const welcome = JSON.parse(await a4.next()) as Event;
    expect(welcome.type).toBe("welcome");
    expect(welcome.user_id).toBe(alice.id);
    expect(JSON.parse(await a4.ask({ type: "list_rooms" })).type).toBe("rooms");

    // And the limit still holds.
    const a5 = await Client.open(`${srv.ws}?token=${alice.token}`);
    expect(await a5.waitClose()).toEqual({ code: 1008, reason: "Too many connections" });

    for (const c of [a2, a4, b1, b2]) c.close();
  });
});

describe("default limits", () => {
  let srv: TestServer;
  beforeAll(async () => {
    srv = await startServer({ BOT_ENABLED: "false" });
  });
  afterAll(() => srv.stop());

  test("/ws/health active_connections goes up and down with sockets", async () => {
    const u = await createUser(srv);
    const v = await createUser(srv);
    const base = await activeConnections(srv);
    const c1 = await Client.connect(srv, u.token);
    expect(await activeConnections(srv)).toBe(base + 1);
    const c2 = await Client.connect(srv, u.token, "text");
    const c3 = await Client.connect(srv, v.token);
    expect(await activeConnections(srv)).toBe(base + 3);

    // Refused sockets are not counted.
    const bad = await Client.open(`${srv.ws}?token=not-a-token`);
    expect(await bad.waitClose()).toEqual({ code: 1008, reason: "Authentication failed" });
    const badFormat = await Client.open(`${srv.ws}?token=${u.token}&format=xml`);
    expect(await badFormat.waitClose()).toEqual({ code: 1008, reason: "Unsupported format" });
    expect(await activeConnections(srv)).toBe(base + 3);

    c1.close();
    c3.close();
    await Promise.all([c1.waitClose(), c3.waitClose()]);
    expect(await untilValue(() => activeConnections(srv), base + 1)).toBe(base + 1);
    c2.close();
    await c2.waitClose();
    expect(await untilValue(() => activeConnections(srv), base)).toBe(base);
  });

  test("a socket whose token expires while connected is closed with 1008 'Token expired'", async () => {
    const u = await createUser(srv);
    const exp = Math.floor(Date.now() / 1000) + 2;
    const short = signToken({ sub: u.id, exp });
    const c = await Client.connect(srv, short);
    const sibling = await Client.connect(srv, u.token);
    // Usable before expiry.
    expect(JSON.parse(await c.ask({ type: "create_room", room_name: "brief" })).type).toBe(
      "room_created",
    );
    c.send({ type: "join_room", room_name: "brief" });
    expect((await c.take(2)).map((f) => JSON.parse(f).type)).toEqual([
      "room_joined",
      "room_update",
    ]);

    const closed = await c.waitClose(8000);
    expect(closed).toEqual({ code: 1008, reason: "Token expired" });
    // Not before the token's expiry (exp is whole seconds).
    expect(Date.now()).toBeGreaterThanOrEqual(exp * 1000 - 50);

    // The user's socket with a long-lived token stays; the expired one left its room.
    expect(await until(() => srv.kabar.hub.isOnline(u.id) && srv.kabar.hub.connections === 1)).toBe(
      true,
    );
    const list = JSON.parse(await sibling.ask({ type: "list_rooms" })) as Event;
    const rooms = list.rooms as Array<{ name: string; members: number }>;
    expect(rooms.find((r) => r.name === "brief")?.members).toBe(0);
    expect(sibling.ws.readyState).toBe(WebSocket.OPEN);
    // The expired token cannot connect again.
    const again = await Client.open(`${srv.ws}?token=${short}`);
    expect(await again.waitClose()).toEqual({ code: 1008, reason: "Authentication failed" });
    sibling.close();
  }, 15000);

  test("PATCH is_active=false closes every socket of that user with 1008; others stay", async () => {
    const admin = await token(srv, ADMIN_EMAIL, ADMIN_PASSWORD);
    const dan = await createUser(srv);
    const eve = await createUser(srv);
    const d1 = await Client.connect(srv, dan.token);
    const d2 = await Client.connect(srv, dan.token, "text");
    const e1 = await Client.connect(srv, eve.token);
    await d1.ask({ type: "create_room", room_name: "dans-room" });
    d1.send({ type: "join_room", room_name: "dans-room" });
    await d1.take(2);

    const res = await fetch(`${srv.api}/users/${dan.id}`, {
      method: "PATCH",
      headers: { authorization: `Bearer ${admin}`, "content-type": "application/json" },
      body: JSON.stringify({ is_active: false }),
    });
    expect(res.status).toBe(200);
    expect(((await res.json()) as { is_active: boolean }).is_active).toBe(false);

    expect((await d1.waitClose()).code).toBe(1008);
    expect((await d2.waitClose()).code).toBe(1008);
    expect(await until(() => !srv.kabar.hub.isOnline(dan.id))).toBe(true);

    // Eve is untouched.
    expect(e1.ws.readyState).toBe(WebSocket.OPEN);
    const list = JSON.parse(await e1.ask({ type: "list_rooms" })) as Event;
    expect(list.type).toBe("rooms");
    // Dan's disconnected socket left the room.
    const rooms = list.rooms as Array<{ name: string; members: number }>;
    expect(rooms.find((r) => r.name === "dans-room")?.members).toBe(0);

    // The deactivated user cannot connect again.
    const again = await Client.open(`${srv.ws}?token=${dan.token}`);
    expect(await again.waitClose()).toEqual({ code: 1008, reason: "Authentication failed" });
    e1.close();
  });

  test("DELETE /users/{id} closes every socket of that user with 1008; others stay", async () => {
    const admin = await token(srv, ADMIN_EMAIL, ADMIN_PASSWORD);
    const fred = await createUser(srv);
    const gina = await createUser(srv);
    const f1 = await Client.connect(srv, fred.token);
    const f2 = await Client.connect(srv, fred.token);
    const g1 = await Client.connect(srv, gina.token);
    const g2 = await Client.connect(srv, gina.token, "text");
    const before = srv.kabar.hub.connections;

    const res = await fetch(`${srv.api}/users/${fred.id}`, {
      method: "DELETE",
      headers: { authorization: `Bearer ${admin}` },
    });
    expect(res.status).toBe(200);

    expect((await f1.waitClose()).code).toBe(1008);
    expect((await f2.waitClose()).code).toBe(1008);
    expect(await until(() => srv.kabar.hub.connections === before - 2)).toBe(true);

    expect(JSON.parse(await g1.ask({ type: "list_rooms" })).type).toBe("rooms");
    expect(await g2.ask({ type: "list_rooms" })).toMatch(/^\[System\] /);
    expect(g1.ws.readyState).toBe(WebSocket.OPEN);
    expect(g2.ws.readyState).toBe(WebSocket.OPEN);

    const again = await Client.open(`${srv.ws}?token=${fred.token}`);
    expect(await again.waitClose()).toEqual({ code: 1008, reason: "Authentication failed" });
    g1.close();
    g2.close();
  });
});
