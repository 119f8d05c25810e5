// The close code and reason a client reads when the server ends its socket: a user deactivated
// (1008 `User deactivated`) or deleted (1008 `User deleted`) by a superuser, and a graceful stop
// (1001 `Server shutting down`). Real server, real sockets in both formats, real REST calls.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import {
  adminUser,
  Client,
  createUser,
  startServer,
  type TestServer,
  type TestUser,
} from "./helpers.ts";

let srv: TestServer;
let admin: TestUser;
let bystander: TestUser;

beforeAll(async () => {
  srv = await startServer({ BOT_ENABLED: "false" });
  admin = await adminUser(srv);
  bystander = await createUser(srv);
});
afterAll(() => srv.stop());

function patch(id: string, json: Record<string, unknown>): Promise<Response> {
  return fetch(`${srv.api}/users/${id}`, {
    method: "PATCH",
    headers: { authorization: `Bearer ${admin.token}`, "content-type": "application/json" },
    body: JSON.stringify(json),
  });
}

function remove(id: string): Promise<Response> {
  return fetch(`${srv.api}/users/${id}`, {
    method: "DELETE",
    headers: { authorization: `Bearer ${admin.token}` },
  });
}

/** Three sockets of `u`: JSON, text, and JSON inside a room it created. */
async function socketsOf(server: TestServer, u: TestUser, room: string): Promise<Client[]> {
  const json = await Client.connect(server, u.token);
  const text = await Client.connect(server, u.token, "text");
  const inRoom = await Client.connect(server, u.token);
  expect(JSON.parse(await inRoom.ask({ type: "create_room", room_name: room })).type).toBe(
    "room_created",
  );
  inRoom.send({ type: "join_room", room_name: room });
  await inRoom.take(2);
  return [json, text, inRoom];
}

/** The (JSON) socket is open and still answers a command. */
async function expectAlive(c: Client): Promise<void> {
  expect(c.ws.readyState).toBe(WebSocket.OPEN);
  c.send({ type: "list_rooms" });
  expect((await c.json()).type).toBe("rooms");
}

describe("a superuser acting on a user closes that user's sockets", () => {
  test("PATCH is_active=false → 1008 `User deactivated` on every socket of the user", async () => {
    const u = await createUser(srv);
    const watcher = await Client.connect(srv, bystander.token);
    const sockets = await socketsOf(srv, u, "deactivated-room");
    const res = await patch(u.id, { is_active: false });
    expect(res.status).toBe(200);
    for (const c of sockets)
      expect(await c.waitClose()).toEqual({ code: 1008, reason: "User deactivated" });
    await expectAlive(watcher);
    watcher.close();
  });

  test("DELETE → 1008 `User deleted` on every socket of the user", async () => {
    const u = await createUser(srv);
    const watcher = await Client.connect(srv, bystander.token);
    const sockets = await socketsOf(srv, u, "deleted-room");
    const res = await remove(u.id);
    expect(res.status).toBe(200);
    for (const c of sockets)
      expect(await c.waitClose()).toEqual({ code: 1008, reason: "User deleted" });
    await expectAlive(watcher);
    watcher.close();
  });

  test("a PATCH that keeps the user active closes nothing", async () => {
    const u = await createUser(srv);
    const c = await Client.connect(srv, u.token);
    for (const body of [{ full_name: "Still Here" }, { is_superuser: true }, { is_active: true }])
      expect((await patch(u.id, body)).status).toBe(200);
    await expectAlive(c);
    c.close();
  });

  test("a refused PATCH or DELETE (not a superuser) closes nothing", async () => {
    const u = await createUser(srv);
    const c = await Client.connect(srv, u.token);
    const asUser = (method: string) =>
      fetch(`${srv.api}/users/${u.id}`, {
        method,
        headers: { authorization: `Bearer ${bystander.token}`, "content-type": "application/json" },
        ...(method === "PATCH" ? { body: JSON.stringify({ is_active: false }) } : {}),
      });
    expect((await asUser("PATCH")).status).toBe(403);
    expect((await asUser("DELETE")).status).toBe(403);
    await expectAlive(c);
    c.close();
  });
});

describe("graceful stop", () => {
  test("every socket, of every user and format, gets 1001 `Server shutting down`", async () => {
    const own = await startServer({ BOT_ENABLED: "false" });
    let stopped = false;
    try {
      const [u, v] = await Promise.all([createUser(own), createUser(own)]);
      const sockets = [
        ...(await socketsOf(own, u, "stop-room-u")),
        ...(await socketsOf(own, v, "stop-room-v")),
      ];
      const stopping = own.stop();
      stopped = true;
      const closes = await Promise.all(sockets.map((c) => c.waitClose(5000)));
      for (const closed of closes)
        expect(closed).toEqual({ code: 1001, reason: "Server shutting down" });
      await stopping;
      // Nothing listens any more.
      const after = await fetch(`${own.api}/ws/health`).then(
        (r) => r.status,
        () => "refused",
      );
      expect(after).toBe("refused");
    } finally {
      if (!stopped) await own.stop();
    }
  });
});
