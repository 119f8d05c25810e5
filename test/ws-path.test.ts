// The WebSocket endpoint answers at /api/v1/ws and /api/v1/ws/ alike (the REST paths work with
// and without the trailing slash, and so does this one); a plain GET gets 426, not 404.
import { afterAll, beforeAll, expect, test } from "bun:test";
import { Client, createUser, startServer, type TestServer, type TestUser } from "./helpers.ts";

let srv: TestServer;
let user: TestUser;
beforeAll(async () => {
  srv = await startServer();
  user = await createUser(srv);
});
afterAll(() => srv.stop());

for (const path of ["/api/v1/ws", "/api/v1/ws/"]) {
  test(`${path}: upgrade, welcome, a command works`, async () => {
    const c = await Client.open(`ws://127.0.0.1:${srv.port}${path}?token=${user.token}`);
    expect(JSON.parse(await c.next())).toMatchObject({ type: "welcome", user_id: user.id });
    c.send({ type: "list_rooms" });
    expect(JSON.parse(await c.next())).toMatchObject({ type: "rooms" });
    c.close();
  });

  test(`${path}: a bad token is closed 1008 Authentication failed`, async () => {
    const c = await Client.open(`ws://127.0.0.1:${srv.port}${path}?token=nope`);
    expect(await c.closed).toEqual({ code: 1008, reason: "Authentication failed" });
  });

  test(`${path}: a plain GET is 426 with a detail`, async () => {
    const res = await fetch(`http://127.0.0.1:${srv.port}${path}`);
    expect(res.status).toBe(426);
    expect(await res.json()).toEqual({ detail: "Expected a WebSocket upgrade" });
  });
}
