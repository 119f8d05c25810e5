// Room limits against a real server: MAX_ROOMS, MAX_ROOMS_PER_USER, the empty-room TTL,
// closing a room (members moved out, slot freed) and member counts after disconnects.
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { Client, createUser, startServer, type TestServer } from "./helpers.ts";

// Real servers, argon2 logins and waits for timers: generous per-test limits.
setDefaultTimeout(20_000);

type Event = Record<string, unknown>;
interface Room {
  name: string;
  creator: string;
  members: number;
  created_at: string;
}

async function rooms(c: Client): Promise<Room[]> {
  const ev = JSON.parse(await c.ask({ type: "list_rooms" })) as Event;
  expect(ev.type).toBe("rooms");
  return ev.rooms as Room[];
}

async function roomNames(c: Client): Promise<string[]> {
  return (await rooms(c)).map((r) => r.name);
}

async function create(c: Client, room: string): Promise<Event> {
  return JSON.parse(await c.ask({ type: "create_room", room_name: room })) as Event;
}

async function join(c: Client, room: string): Promise<void> {
  c.send({ type: "join_room", room_name: room });
  let first = JSON.parse(await c.next()) as Event;
  if (first.type === "room_left") first = JSON.parse(await c.next()) as Event; // switching
  expect(first).toMatchObject({ type: "room_joined", room });
  expect(JSON.parse(await c.next())).toMatchObject({ type: "room_update", room });
}

const created = (room: string) => ({
  type: "room_created",
  room,
  text: `[System] Room '${room}' created successfully!`,
});
const limit = (what: string) => ({
  type: "error",
  code: "limit_reached",
  text: `[System] ${what} limit reached.`,
});
const exists = (room: string) => ({
  type: "error",
  code: "room_exists",
  text: `[System] Room '${room}' already exists!`,
});

describe("MAX_ROOMS=3, MAX_ROOMS_PER_USER=2", () => {
  let srv: TestServer;
  beforeAll(async () => {
    srv = await startServer({ MAX_ROOMS: "3", MAX_ROOMS_PER_USER: "2", BOT_ENABLED: "false" });
  });
  afterAll(() => srv.stop());

  test("limit_reached per user and in total; room_exists first; closing frees the slot", async () => {
    const alice = await createUser(srv);
    const bob = await createUser(srv);
    const carol = await createUser(srv);
    const a = await Client.connect(srv, alice.token);
    const aText = await Client.connect(srv, alice.token, "text");
    const b = await Client.connect(srv, bob.token);
    const c = await Client.connect(srv, carol.token);

    expect(await create(a, "r1")).toEqual(created("r1"));
    expect(await create(a, "r2")).toEqual(created("r2"));
    // Per-user limit, in both formats (the limit is per user, not per socket).
    expect(await create(a, "r3")).toEqual(limit("Rooms per user"));
    expect(await aText.ask({ type: "create_room", room_name: "r3" })).toBe(
      "[System] Rooms per user limit reached.",
    );
    // room_exists before limit_reached.
    expect(await create(a, "r1")).toEqual(exists("r1"));

    expect(await create(b, "r3")).toEqual(created("r3"));
    // Total limit: Bob is under his own limit, but there are 3 rooms.
    expect(await create(b, "r4")).toEqual(limit("Total rooms"));
    expect(await create(c, "r4")).toEqual(limit("Total rooms"));
    // room_exists before the total limit too.
    expect(await create(c, "r2")).toEqual(exists("r2"));
    expect(await roomNames(c)).toEqual(["r1", "r2", "r3"]);

    // Closing (by name, without being in it) frees the creator's slot and one total slot.
    a.send({ type: "close_room", room_name: "r1" });
    expect(JSON.parse(await a.next())).toMatchObject({ type: "room_closed", room: "r1" });
    expect(await a.stray()).toEqual([]); // not in the room: no room_update
    expect(await create(a, "r5")).toEqual(created("r5"));
    // Both limits are reached now (Alice has 2, there are 3): either text will do.
    expect(await create(a, "r6")).toMatchObject({
      type: "error",
      code: "limit_reached",
      text: expect.stringMatching(/^\[System\] (Rooms per user|Total rooms) limit reached\.$/),
    });
    expect(await create(c, "r6")).toEqual(limit("Total rooms"));

    // Closing from inside frees it too.
    await join(a, "r5");
    a.send({ type: "close_room" });
    const [closed, update] = (await a.take(2)).map((f) => JSON.parse(f) as Event);
    expect(closed).toMatchObject({ type: "room_closed", room: "r5" });
    expect(update).toMatchObject({ type: "room_update", room: null });
    expect(await create(c, "r6")).toEqual(created("r6"));
    expect(await create(a, "r7")).toEqual(limit("Total rooms"));
    expect(await roomNames(b)).toEqual(["r2", "r3", "r6"]);

    for (const x of [a, aText, b, c]) x.close();
  });
});

describe("ROOM_EMPTY_TTL_SECONDS=0.5, MAX_ROOMS_PER_USER=4", () => {
  let srv: TestServer;
  beforeAll(async () => {
    srv = await startServer({
      ROOM_EMPTY_TTL_SECONDS: "0.5",
      MAX_ROOMS_PER_USER: "4",
      BOT_ENABLED: "false",
    });
  });
  afterAll(() => srv.stop());

  test("the hub's own timer removes an empty room", async () => {
    const carol = await createUser(srv);
    const c = await Client.connect(srv, carol.token);
    expect(await create(c, "brief")).toEqual(created("brief"));
    // Bounded wait, no speed check: the timer ticks every 125 ms for a 0.5 s TTL.
    let names = await roomNames(c);
    for (let i = 0; i < 100 && names.includes("brief"); i++) {
      await Bun.sleep(100);
      names = await roomNames(c);
    }
    expect(names).not.toContain("brief");
    c.close();
  });

  test("empty rooms go once empty for the TTL, not before; a room with a member stays", async () => {
    const hub = srv.kabar.hub;
    // The upkeep runs only at the times chosen below (`maintain(now)`), not on the real timer.
    hub.stop();
    const alice = await createUser(srv);
    const bob = await createUser(srv);
    const a = await Client.connect(srv, alice.token);
    const b = await Client.connect(srv, bob.token);

    const first = Date.now(); // no room below was empty before this
    expect(await create(a, "ghost")).toEqual(created("ghost")); // created, never joined
    expect(await create(a, "left")).toEqual(created("left")); // last member leaves
    expect(await create(a, "dropped")).toEqual(created("dropped")); // last member disconnects
    expect(await create(a, "kept")).toEqual(created("kept")); // keeps a member
    await join(a, "left");
    await join(a, "kept"); // switching rooms leaves "left"
    const b2 = await Client.connect(srv, bob.token);
    await join(b2, "dropped");
    b2.close();
    await b2.waitClose();
    let list = await rooms(b);
    for (let i = 0; i < 100 && list.some((r) => r.name === "dropped" && r.members > 0); i++) {
      await Bun.sleep(20);
      list = await rooms(b);
    }
    const last = Date.now(); // every room but "kept" has been empty since before this
    expect(list.map((r) => [r.name, r.members])).toEqual([
      ["ghost", 0],
      ["left", 0],
      ["dropped", 0],
      ["kept", 1],
    ]);

    // Not one of them has been empty for 0.5 s at first + 300 ms: all stay.
    hub.maintain(first + 300);
    expect(await roomNames(b)).toEqual(["ghost", "left", "dropped", "kept"]);
    // Every empty one has been at last + 500 ms: they go, the occupied room stays.
    hub.maintain(last + 500);
    let names = await roomNames(b);
    for (let i = 0; i < 50 && names.length > 1; i++) {
      await Bun.sleep(20); // the sweep's answer is asynchronous
      names = await roomNames(b);
    }
    expect(names).toEqual(["kept"]);
    // Well past the TTL, the occupied room is still there, with its member.
    hub.maintain(last + 60_000);
    list = await rooms(b);
    expect(list.map((r) => [r.name, r.members])).toEqual([["kept", 1]]);

    // A removed room frees its creator's slot: 1 of 4 used now.
    for (const r of ["n1", "n2", "n3"]) expect(await create(a, r)).toEqual(created(r));
    expect(await create(a, "n4")).toEqual(limit("Rooms per user"));
    // ...and its name: it can be created again (by someone else).
    expect(await create(b, "ghost")).toEqual(created("ghost"));
    a.close();
    b.close();
  }, 15000);
});

describe("closing rooms and member counts", () => {
  let srv: TestServer;
  beforeAll(async () => {
    srv = await startServer({ BOT_ENABLED: "false" });
  });
  afterAll(() => srv.stop());

  test("closing moves every member out: their message gets not_in_room", async () => {
    const alice = await createUser(srv);
    const bob = await createUser(srv);
    const carol = await createUser(srv);
    const a = await Client.connect(srv, alice.token);
    const b = await Client.connect(srv, bob.token);
    const cText = await Client.connect(srv, carol.token, "text");

    expect(await create(a, "hall")).toEqual(created("hall"));
    await join(a, "hall");
    await join(b, "hall");
    cText.send({ type: "join_room", room_name: "hall" });
    expect(await cText.take(2)).toEqual([
      "[System] Joined room 'hall' successfully!",
      "ROOM_UPDATE:hall",
    ]);
    expect((await rooms(a)).map((r) => [r.name, r.members])).toEqual([["hall", 3]]);

    a.send({ type: "close_room" });
    expect((await a.take(2)).map((f) => JSON.parse(f).type)).toEqual([
      "room_closed",
      "room_update",
    ]);
    const [closed, update] = (await b.take(2)).map((f) => JSON.parse(f) as Event);
    expect(closed).toEqual({
      type: "room_closed",
      room: "hall",
      by: alice.id,
      text: "[System] Room 'hall' was closed by its creator.",
    });
    expect(update).toEqual({ type: "room_update", room: null, text: "ROOM_UPDATE:None" });
    expect(await cText.take(2)).toEqual([
      "[System] Room 'hall' was closed by its creator.",
      "ROOM_UPDATE:None",
    ]);

    expect(JSON.parse(await b.ask({ type: "message", content: "anyone?" }))).toEqual({
      type: "error",
      code: "not_in_room",
      text: "[System] You need to join a room first to send messages!",
    });
    expect(await cText.ask({ type: "message", content: "hello?" })).toBe(
      "[System] You need to join a room first to send messages!",
    );
    expect(await cText.ask({ type: "leave_room" })).toBe("[System] You are not in any room!");
    expect(JSON.parse(await a.ask({ type: "message", content: "still here?" }))).toMatchObject({
      code: "not_in_room",
    });
    expect(JSON.parse(await b.ask({ type: "join_room", room_name: "hall" }))).toMatchObject({
      code: "room_not_found",
    });
    expect(await rooms(b)).toEqual([]);

    // A new room with the same name starts empty and works.
    expect(await create(b, "hall")).toEqual(created("hall"));
    await join(b, "hall");
    expect((await rooms(b)).map((r) => [r.name, r.creator, r.members])).toEqual([
      ["hall", bob.id, 1],
    ]);
    b.send({ type: "message", content: "fresh" });
    expect(JSON.parse(await b.next())).toMatchObject({ type: "message", content: "fresh" });
    expect(await a.stray()).toEqual([]);
    for (const x of [a, b, cText]) x.close();
  });

  test("closing by name from another room moves that room's members out, not the closer", async () => {
    const alice = await createUser(srv);
    const bob = await createUser(srv);
    const carol = await createUser(srv);
    const a = await Client.connect(srv, alice.token);
    const aText = await Client.connect(srv, alice.token, "text");
    const b = await Client.connect(srv, bob.token);
    const cText = await Client.connect(srv, carol.token, "text");

    expect(await create(a, "lobby")).toEqual(created("lobby"));
    expect(await create(a, "annex")).toEqual(created("annex"));
    await join(a, "lobby");
    await join(b, "annex");
    cText.send({ type: "join_room", room_name: "annex" });
    await cText.take(2);
    aText.send({ type: "join_room", room_name: "annex" }); // the creator's other socket
    await aText.take(2);

    a.send({ type: "close_room", room_name: "annex" });
    expect(JSON.parse(await a.next())).toEqual({
      type: "room_closed",
      room: "annex",
      by: alice.id,
      text: "[System] Room 'annex' closed successfully!",
    });
    expect((await b.take(2)).map((f) => JSON.parse(f) as Event)).toEqual([
      {
        type: "room_closed",
        room: "annex",
        by: alice.id,
        text: "[System] Room 'annex' was closed by its creator.",
      },
      { type: "room_update", room: null, text: "ROOM_UPDATE:None" },
    ]);
    expect(await cText.take(2)).toEqual([
      "[System] Room 'annex' was closed by its creator.",
      "ROOM_UPDATE:None",
    ]);
    expect(await aText.take(2)).toEqual([
      "[System] Room 'annex' was closed by its creator.",
      "ROOM_UPDATE:None",
    ]);
    expect(await a.stray()).toEqual([]); // no room_update: the closer was not in it

    expect(JSON.parse(await b.ask({ type: "message", content: "hi" }))).toMatchObject({
      code: "not_in_room",
    });
    expect(await aText.ask({ type: "message", content: "hi" })).toBe(
      "[System] You need to join a room first to send messages!",
    );
    // The closer is still in its own room.
    a.send({ type: "message", content: "lobby still works" });
    expect(JSON.parse(await a.next())).toMatchObject({ type: "message", room: "lobby" });
    const list = (await rooms(b)).filter((r) => r.name === "lobby" || r.name === "annex");
    expect(list.map((r) => [r.name, r.members])).toEqual([["lobby", 1]]);
    for (const x of [a, aText, b, cText]) x.close();
  });

  test("list_rooms counts sockets; a socket that disconnects leaves its room", async () => {
    const alice = await createUser(srv);
    const bob = await createUser(srv);
    const a = await Client.connect(srv, alice.token);
    const b1 = await Client.connect(srv, bob.token);
    const b2 = await Client.connect(srv, bob.token, "text");

    expect(await create(a, "den")).toEqual(created("den"));
    expect(await create(a, "porch")).toEqual(created("porch"));
    await join(a, "den");
    await join(b1, "den");
    b2.send({ type: "join_room", room_name: "den" });
    await b2.take(2);
    const members = async () =>
      Object.fromEntries(
        (await rooms(a))
          .filter((r) => r.name === "den" || r.name === "porch")
          .map((r) => [r.name, r.members]),
      );
    expect(await members()).toEqual({ den: 3, porch: 0 });

    b1.close();
    await b1.waitClose();
    let now: Record<string, number> = {};
    for (let i = 0; i < 50; i++) {
      now = await members();
      if (now.den === 2) break;
      await Bun.sleep(50);
    }
    expect(now).toEqual({ den: 2, porch: 0 });

    // Switching rooms moves the count.
    a.send({ type: "join_room", room_name: "porch" });
    expect((await a.take(3)).map((f) => JSON.parse(f).type)).toEqual([
      "room_left",
      "room_joined",
      "room_update",
    ]);
    expect(await members()).toEqual({ den: 1, porch: 1 });

    // The remaining member still gets room messages, the one who left does not.
    const b3 = await Client.connect(srv, bob.token);
    await join(b3, "den");
    b3.send({ type: "message", content: "still here" });
    expect(JSON.parse(await b3.next())).toMatchObject({ type: "message", content: "still here" });
    expect(await b2.next()).toBe(`User ${bob.id} says: still here`);
    expect(await a.stray()).toEqual([]);

    b2.close();
    b3.close();
    await Promise.all([b2.waitClose(), b3.waitClose()]);
    for (let i = 0; i < 50; i++) {
      now = await members();
      if (now.den === 0) break;
      await Bun.sleep(50);
    }
    expect(now).toEqual({ den: 0, porch: 1 });
    a.close();
  });
});
