// Presence and typing on one node: the `presence` command lists users with their sockets;
// sockets that joined with `presence: true` get presence_join / presence_leave per user (a
// second tab makes no event) and `typing` (JSON only); sockets that did not ask get neither.
import { afterAll, beforeAll, expect, setDefaultTimeout, test } from "bun:test";
import { Client, createUser, startServer, type TestServer, type TestUser } from "./helpers.ts";
import { ENV, type Ev, parseEvent } from "./protocol-client.ts";

setDefaultTimeout(20_000);
let srv: TestServer;
let alice: TestUser;
let bob: TestUser;
beforeAll(async () => {
  srv = await startServer({ ...ENV });
  alice = await createUser(srv);
  bob = await createUser(srv);
});
afterAll(() => srv.stop());

let n = 0;
const fresh = () => `pr-${++n}-${Date.now().toString(36)}`;
const ev = async (c: Client): Promise<Ev> => parseEvent(await c.next());

async function join(c: Client, room: string, presence?: boolean): Promise<void> {
  c.send({ type: "join_room", room_name: room, ...(presence === undefined ? {} : { presence }) });
  if (c.format === "text") {
    await c.take(2);
    return;
  }
  expect(await ev(c)).toMatchObject({ type: "room_joined" });
  expect(await ev(c)).toMatchObject({ type: "room_update" });
}

test("two tabs of one user: one presence_join, one presence_leave; the list counts both tabs", async () => {
  const room = fresh();
  const watcher = await Client.connect(srv, bob.token);
  watcher.send({ type: "create_room", room_name: room });
  await ev(watcher);
  await join(watcher, room, true);
  const plain = await Client.connect(srv, bob.token);
  await join(plain, room);
  const textWatcher = await Client.connect(srv, bob.token, "text");
  await join(textWatcher, room, true);

  const tab1 = await Client.connect(srv, alice.token);
  await join(tab1, room);
  expect(await ev(watcher)).toEqual({
    type: "presence_join",
    room,
    user_id: alice.id,
    text: `[System] User ${alice.id} joined '${room}'`,
  });
  expect(await textWatcher.next()).toBe(`[System] User ${alice.id} joined '${room}'`);
  const tab2 = await Client.connect(srv, alice.token);
  await join(tab2, room);

  tab1.send({ type: "presence" });
  const list = await ev(tab1);
  expect(list).toMatchObject({ type: "presence", room });
  const users = list.users as Array<{ user_id: string; connections: number }>;
  expect(users).toEqual(
    [
      { user_id: alice.id, connections: 2 },
      { user_id: bob.id, connections: 3 },
    ].sort((a, b) => (a.user_id < b.user_id ? -1 : 1)),
  );
  expect(list.text).toBe(
    [`[System] Online in '${room}': 2 users`, ...users.map((u) => `  - ${u.user_id}`)].join("\n"),
  );

  tab1.send({ type: "leave_room" });
  await tab1.take(2);
  // Alice still has a tab in the room: no event yet.
  expect(await watcher.stray()).toEqual([]);
  tab2.close();
  expect(await ev(watcher)).toEqual({
    type: "presence_leave",
    room,
    user_id: alice.id,
    text: `[System] User ${alice.id} left '${room}'`,
  });
  expect(await textWatcher.next()).toBe(`[System] User ${alice.id} left '${room}'`);
  // The socket that did not ask got nothing of it.
  expect(await plain.stray()).toEqual([]);
  for (const c of [watcher, plain, textWatcher, tab1]) c.close();
});

test("typing: to the room's other JSON sockets that asked for presence, never echoed, never stored", async () => {
  const room = fresh();
  const a = await Client.connect(srv, alice.token);
  a.send({ type: "create_room", room_name: room });
  await ev(a);
  await join(a, room, true);
  const b = await Client.connect(srv, bob.token);
  await join(b, room, true);
  expect(await ev(a)).toMatchObject({ type: "presence_join", user_id: bob.id });
  const quiet = await Client.connect(srv, bob.token);
  await join(quiet, room);
  const text = await Client.connect(srv, bob.token, "text");
  await join(text, room, true);
  b.send({ type: "typing" });
  expect(await ev(a)).toEqual({ type: "typing", room, user_id: bob.id });
  expect(await b.stray()).toEqual([]);
  expect(await quiet.stray()).toEqual([]);
  expect(await text.stray()).toEqual([]);
  a.send({ type: "history" });
  expect((await ev(a)).messages).toEqual([]);
  const out = await Client.connect(srv, alice.token);
  out.send({ type: "typing" });
  expect(await ev(out)).toMatchObject({ type: "error", code: "not_in_room" });
  for (const c of [a, b, quiet, text, out]) c.close();
});

test("presence: errors for no room and an unknown room", async () => {
  const c = await Client.connect(srv, alice.token, "text");
  c.send({ type: "presence" });
  expect(await c.next()).toBe("[System] You are not in any room!");
  c.send({ type: "presence", room_name: "nowhere-at-all" });
  expect(await c.next()).toBe("[System] Room 'nowhere-at-all' does not exist!");
  c.send({ type: "join_room", room_name: "x", presence: "yes" });
  expect(await c.next()).toBe("[System] Invalid message: presence must be true or false");
  c.close();
});
