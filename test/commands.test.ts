// Every WebSocket command against a real server, in both formats: what each one sends, every
// state error it can produce, and the ordering rules of the wire contract (docs/protocol.md).
// Every JSON frame received is checked against the TypeBox `ServerEvent` / `Events` schemas.
// Frame validation, the bot and handler extension are in commands-validation.test.ts.
import { afterAll, afterEach, beforeAll, describe, expect, test } from "bun:test";
import { adminUser, createUser, startServer, type TestServer, type TestUser } from "./helpers.ts";
import {
  closeOpened,
  ENV,
  type Ev,
  FMTS,
  type Fmt,
  fresh,
  ISO_UTC,
  line,
  listRooms,
  other,
  quietAll,
  roomInfo,
  Sock,
} from "./protocol-client.ts";

// ---------------------------------------------------------------- shared server

let srv: TestServer;
let u1: TestUser;
let u2: TestUser;
let u3: TestUser;
let u4: TestUser;
let admin: TestUser;

beforeAll(async () => {
  srv = await startServer(ENV);
  [u1, u2, u3, u4] = await Promise.all([
    createUser(srv),
    createUser(srv),
    createUser(srv),
    createUser(srv),
  ]);
  admin = await adminUser(srv);
});
afterEach(() => {
  closeOpened();
});
afterAll(() => srv.stop());

const connect = (user: TestUser, fmt: Fmt) => Sock.connect(srv, user, fmt);

for (const fmt of FMTS) {
  describe(`welcome (${fmt})`, () => {
    test("exactly one welcome frame on connect", async () => {
      const s = await connect(u1, fmt);
      await s.quiet();
    });
  });

  describe(`create_room (${fmt})`, () => {
    test("creates the room without joining it", async () => {
      const s = await connect(u1, fmt);
      const obs = await connect(u2, "json");
      const room = fresh();
      s.send({ type: "create_room", room_name: room });
      await s.expectCreated(room);
      await s.quiet();
      // Creating does not join: a message has no room to go to.
      s.send({ type: "message", content: "hello" });
      await s.expectError("not_in_room", line.notInRoomToSend);
      const info = await roomInfo(obs, room);
      expect(info).toEqual({
        name: room,
        creator: u1.id,
        members: 0,
        created_at: expect.stringMatching(ISO_UTC),
      });
    });

    test("room_exists for the creator and for anyone else", async () => {
      const s = await connect(u1, fmt);
      const t = await connect(u2, fmt);
      const room = fresh();
      await s.create(room);
      s.send({ type: "create_room", room_name: room });
      await s.expectError("room_exists", line.roomExists(room));
      t.send({ type: "create_room", room_name: room });
      await t.expectError("room_exists", line.roomExists(room));
      // The room keeps its creator.
      const obs = await connect(u3, "json");
      expect((await roomInfo(obs, room))?.creator).toBe(u1.id);
      await quietAll([s, t]);
    });
  });

  describe(`join_room (${fmt})`, () => {
    test("room_joined then room_update; members counts sockets, the joiner included", async () => {
      const a = await connect(u1, fmt);
      const a2 = await connect(u1, other(fmt)); // a second socket of the same user
      const b = await connect(u2, fmt);
      const room = fresh();
      await a.create(room);
      a.send({ type: "join_room", room_name: room });
      await a.expectJoined(room, 1);
      await a.expectUpdate(room);
      a2.send({ type: "join_room", room_name: room });
      await a2.expectJoined(room, 2);
      await a2.expectUpdate(room);
      b.send({ type: "join_room", room_name: room });
      await b.expectJoined(room, 3);
      await b.expectUpdate(room);
      await quietAll([a, a2, b]);
      const obs = await connect(u3, "json");
      expect((await roomInfo(obs, room))?.members).toBe(3);
    });

    test("room_not_found for a room that does not exist", async () => {
      const s = await connect(u1, fmt);
      const room = fresh("nowhere");
      s.send({ type: "join_room", room_name: room });
      await s.expectError("room_not_found", line.roomNotFound(room));
      await s.quiet();
      // Still in no room.
      s.send({ type: "leave_room" });
      await s.expectError("not_in_room", line.notInRoom);
    });

    test("room_not_found while in a room: the socket stays in its room", async () => {
      const s = await connect(u1, fmt);
      const room = fresh();
      const missing = fresh("nowhere");
      await s.create(room);
      await s.join(room, 1);
      s.send({ type: "join_room", room_name: missing });
      await s.expectError("room_not_found", line.roomNotFound(missing));
      await s.quiet();
      s.send({ type: "message", content: "still here" });
      await s.expectMessage(room, u1.id, "still here", true);
    });

    test("a socket that disconnects is no longer counted", async () => {
      const s = await connect(u1, fmt);
      const gone = await connect(u2, fmt);
      const room = fresh();
      await s.create(room);
      await s.join(room, 1);
      await gone.join(room, 2);
      gone.close();
      await gone.client.waitClose();
      const obs = await connect(u3, "json");
      let members: unknown;
      for (let i = 0; i < 20; i++) {
        members = (await roomInfo(obs, room))?.members;
        if (members === 1) break;
        await Bun.sleep(25);
      }
      expect(members).toBe(1);
      const again = await connect(u2, other(fmt));
      await again.join(room, 2);
    });

    test("already_in_room when joining the current room; membership unchanged", async () => {
      const s = await connect(u1, fmt);
      const room = fresh();
      await s.create(room);
      await s.join(room, 1);
      s.send({ type: "join_room", room_name: room });
      await s.expectError("already_in_room", line.alreadyInRoom(room));
      await s.quiet();
      const obs = await connect(u3, "json");
      expect((await roomInfo(obs, room))?.members).toBe(1);
      s.send({ type: "message", content: "still here" });
      await s.expectMessage(room, u1.id, "still here", true);
    });

    test("switching rooms: room_left(A), room_joined(B), room_update(B), nothing more", async () => {
      const s = await connect(u1, fmt);
      const inA = await connect(u2, "json");
      const inB = await connect(u3, "text");
      const a = fresh("a");
      const b = fresh("b");
      await s.create(a);
      await s.create(b);
      await inA.join(a, 1);
      await inB.join(b, 1);
      await s.join(a, 2);
      s.send({ type: "join_room", room_name: b });
      await s.expectLeft(a);
      await s.expectJoined(b, 2);
      await s.expectUpdate(b);
      await quietAll([s, inA, inB]);
      const obs = await connect(u4, "json");
      expect((await roomInfo(obs, a))?.members).toBe(1);
      expect((await roomInfo(obs, b))?.members).toBe(2);
      // Messages now go to B only.
      s.send({ type: "message", content: "in b" });
      await s.expectMessage(b, u1.id, "in b", true);
      await inB.expectMessage(b, u1.id, "in b", false);
      await quietAll([s, inA, inB]);
    });
  });

  describe(`leave_room (${fmt})`, () => {
    test("room_left then room_update None; the member count drops", async () => {
      const s = await connect(u1, fmt);
      const stay = await connect(u2, "json");
      const room = fresh();
      await s.create(room);
      await s.join(room, 1);
      await stay.join(room, 2);
      s.send({ type: "leave_room" });
      await s.expectLeft(room);
      await s.expectUpdate(null);
      await quietAll([s, stay]);
      expect((await roomInfo(stay, room))?.members).toBe(1);
      // Out of the room: messages are refused, and the room's messages no longer arrive.
      s.send({ type: "message", content: "hello" });
      await s.expectError("not_in_room", line.notInRoomToSend);
      stay.send({ type: "message", content: "anyone" });
      await stay.expectMessage(room, u2.id, "anyone", true);
      await s.quiet();
    });

    test("not_in_room 'You are not in any room!' when in no room", async () => {
      const s = await connect(u1, fmt);
      s.send({ type: "leave_room" });
      await s.expectError("not_in_room", line.notInRoom);
      const room = fresh();
      await s.create(room);
      await s.join(room, 1);
      s.send({ type: "leave_room" });
      await s.expectLeft(room);
      await s.expectUpdate(null);
      s.send({ type: "leave_room" });
      await s.expectError("not_in_room", line.notInRoom);
      await s.quiet();
    });
  });

  describe(`close_room (${fmt})`, () => {
    test("current room: closer gets room_closed + room_update; every member is moved out", async () => {
      const c = await connect(u1, fmt);
      const mj = await connect(u2, "json");
      const mt = await connect(u3, "text");
      const room = fresh();
      await c.create(room);
      await c.join(room, 1);
      await mj.join(room, 2);
      await mt.join(room, 3);
      c.send({ type: "close_room" });
      await c.expectClosed(room, u1.id, true);
      await c.expectUpdate(null);
      await mj.expectClosed(room, u1.id, false);
      await mj.expectUpdate(null);
      await mt.expectClosed(room, u1.id, false);
      await mt.expectUpdate(null);
      await quietAll([c, mj, mt]);
      // Gone, and nobody is in it any more.
      expect(await roomInfo(mj, room)).toBeUndefined();
      for (const s of [c, mj, mt]) {
        s.send({ type: "message", content: "hello" });
        await s.expectError("not_in_room", line.notInRoomToSend);
      }
      c.send({ type: "join_room", room_name: room });
      await c.expectError("room_not_found", line.roomNotFound(room));
      // The name is free again.
      await c.create(room);
    });

    test("by room_name, not in it: room_closed and no room_update; closer stays in its room", async () => {
      const c = await connect(u1, fmt);
      const mj = await connect(u2, "json");
      const mt = await connect(u3, "text");
      const mine = fresh("mine");
      const target = fresh("target");
      await c.create(mine);
      await c.create(target);
      await c.join(mine, 1);
      await mj.join(target, 1);
      await mt.join(target, 2);
      c.send({ type: "close_room", room_name: target });
      await c.expectClosed(target, u1.id, true);
      await mj.expectClosed(target, u1.id, false);
      await mj.expectUpdate(null);
      await mt.expectClosed(target, u1.id, false);
      await mt.expectUpdate(null);
      await quietAll([c, mj, mt]);
      // The closer is still in its own room.
      c.send({ type: "message", content: "still in mine" });
      await c.expectMessage(mine, u1.id, "still in mine", true);
      const rooms = (await listRooms(mj)).map((r) => r.name);
      expect(rooms).toContain(mine);
      expect(rooms).not.toContain(target);
    });

    test("by room_name while in no room: room_closed only", async () => {
      const c = await connect(u1, fmt);
      const room = fresh();
      await c.create(room);
      c.send({ type: "close_room", room_name: room });
      await c.expectClosed(room, u1.id, true);
      await c.quiet();
      c.send({ type: "join_room", room_name: room });
      await c.expectError("room_not_found", line.roomNotFound(room));
    });

    test("by room_name of the current room: room_closed then room_update", async () => {
      const c = await connect(u1, fmt);
      const room = fresh();
      await c.create(room);
      await c.join(room, 1);
      c.send({ type: "close_room", room_name: room });
      await c.expectClosed(room, u1.id, true);
      await c.expectUpdate(null);
      await c.quiet();
    });

    test("not_in_room 'You are not in any room!' without a room and without room_name", async () => {
      const c = await connect(u1, fmt);
      c.send({ type: "close_room" });
      await c.expectError("not_in_room", line.notInRoom);
      await c.quiet();
    });

    test("room_not_found for a room_name that does not exist", async () => {
      const c = await connect(u1, fmt);
      const room = fresh("nowhere");
      c.send({ type: "close_room", room_name: room });
      await c.expectError("room_not_found", line.roomNotFound(room));
      await c.quiet();
    });

    test("not_room_creator, for the current room and by room_name; the room survives", async () => {
      const c = await connect(u1, fmt);
      const o = await connect(u2, fmt);
      const room = fresh();
      const elsewhere = fresh();
      await c.create(room);
      await c.create(elsewhere);
      await c.join(room, 1);
      await o.join(room, 2);
      o.send({ type: "close_room" });
      await o.expectError("not_room_creator", line.notRoomCreator(room));
      o.send({ type: "close_room", room_name: elsewhere });
      await o.expectError("not_room_creator", line.notRoomCreator(elsewhere));
      await quietAll([c, o]);
      const names = (await listRooms(await connect(u3, "json"))).map((r) => r.name);
      expect(names).toContain(room);
      expect(names).toContain(elsewhere);
      // Both are still in the room.
      o.send({ type: "message", content: "still open" });
      await o.expectMessage(room, u2.id, "still open", true);
      await c.expectMessage(room, u2.id, "still open", false);
    });
  });

  describe(`message (${fmt})`, () => {
    test("echo to the sender and delivery to every member, in both formats, one id", async () => {
      const a = await connect(u1, fmt);
      const bj = await connect(u2, "json");
      const bj2 = await connect(u2, "json");
      const ct = await connect(u3, "text");
      const outside = await connect(u4, "json");
      const room = fresh();
      const away = fresh("away");
      await a.create(room);
      await a.create(away);
      await a.join(room, 1);
      await bj.join(room, 2);
      await bj2.join(room, 3);
      await ct.join(room, 4);
      await outside.join(away, 1);
      a.send({ type: "message", content: "  Hello everyone!  " });
      const echo = await a.expectMessage(room, u1.id, "Hello everyone!", true);
      const d1 = await bj.expectMessage(room, u1.id, "Hello everyone!", false);
      const d2 = await bj2.expectMessage(room, u1.id, "Hello everyone!", false);
      await ct.expectMessage(room, u1.id, "Hello everyone!", false);
      expect(d1?.id).toBe(d2?.id as string);
      if (echo) expect(echo.id).toBe(d1?.id as string);
      await quietAll([a, bj, bj2, ct, outside]);

      // A second message has its own id.
      a.send({ type: "message", content: "again" });
      await a.expectMessage(room, u1.id, "again", true);
      const d3 = await bj.expectMessage(room, u1.id, "again", false);
      expect(d3?.id).not.toBe(d1?.id as string);
      await bj2.expectMessage(room, u1.id, "again", false);
      await ct.expectMessage(room, u1.id, "again", false);
      await quietAll([a, bj, bj2, ct, outside]);
    });

    test("not_in_room 'You need to join a room first to send messages!'", async () => {
      const a = await connect(u1, fmt);
      a.send({ type: "message", content: "hello" });
      await a.expectError("not_in_room", line.notInRoomToSend);
      await a.quiet();
    });
  });

  describe(`direct (${fmt})`, () => {
    test("reaches every socket of the target; the sender gets its copy", async () => {
      const s = await connect(u1, fmt);
      const tj = await connect(u2, "json");
      const tt = await connect(u2, "text");
      const o = await connect(u3, "json");
      s.send({ type: "direct", user_id: u2.id, content: "  psst, hi  " });
      const fields = {
        type: "direct",
        id: expect.any(String),
        from: u1.id,
        to: u2.id,
        content: "psst, hi",
        sent_at: expect.stringMatching(ISO_UTC),
      };
      const mine = await s.expect(fields, `You wrote to ${u2.id}: psst, hi`);
      const got = await tj.expect(fields, `[Private] User ${u1.id} says: psst, hi`);
      await tt.expect(fields, `[Private] User ${u1.id} says: psst, hi`);
      if (mine) expect(mine.id).toBe(got?.id as string);
      await quietAll([s, tj, tt, o]);
    });

    test("reaches a target inside a room from a sender in none", async () => {
      const s = await connect(u1, fmt);
      const t = await connect(u2, fmt);
      const room = fresh();
      await t.create(room);
      await t.join(room, 1);
      s.send({ type: "direct", user_id: u2.id, content: "hi" });
      await s.frame();
      await t.expect(
        {
          type: "direct",
          id: expect.any(String),
          from: u1.id,
          to: u2.id,
          content: "hi",
          sent_at: expect.stringMatching(ISO_UTC),
        },
        `[Private] User ${u1.id} says: hi`,
      );
      await quietAll([s, t]);
    });

    test("user_offline for an unknown user and for a user with no socket", async () => {
      const s = await connect(u1, fmt);
      const nobody = crypto.randomUUID();
      s.send({ type: "direct", user_id: nobody, content: "hi" });
      await s.expectError("user_offline", line.userOffline(nobody));
      s.send({ type: "direct", user_id: u4.id, content: "hi" });
      await s.expectError("user_offline", line.userOffline(u4.id));
      await s.quiet();
    });
  });

  describe(`broadcast (${fmt})`, () => {
    test("a superuser's broadcast reaches every socket in both formats", async () => {
      const a = await connect(admin, fmt);
      const a2 = await connect(admin, other(fmt));
      const j1 = await connect(u1, "json");
      const t1 = await connect(u1, "text");
      const j2 = await connect(u2, "json");
      const room = fresh();
      await j2.create(room);
      await j2.join(room, 1);
      a.send({ type: "broadcast", content: "  maintenance at 5  " });
      const fields = {
        type: "broadcast",
        id: expect.any(String),
        from: admin.id,
        content: "maintenance at 5",
        sent_at: expect.stringMatching(ISO_UTC),
      };
      const ids = new Set<unknown>();
      for (const s of [a, a2, j1, t1, j2]) {
        const ev = await s.expect(fields, "[Broadcast] maintenance at 5");
        if (ev) ids.add(ev.id);
      }
      expect(ids.size).toBe(1);
      await quietAll([a, a2, j1, t1, j2]);
    });

    test("forbidden for a non-superuser; nobody receives anything", async () => {
      const s = await connect(u1, fmt);
      const others = [await connect(u2, "json"), await connect(u2, "text")];
      s.send({ type: "broadcast", content: "everyone look" });
      await s.expectError("forbidden", line.forbidden);
      await quietAll([s, ...others]);
    });
  });
}

// ---------------------------------------------------------------- list_rooms (own server)

describe("list_rooms (fresh server, both formats)", () => {
  let ls: TestServer;
  let x: TestUser;
  let y: TestUser;
  beforeAll(async () => {
    ls = await startServer(ENV);
    [x, y] = await Promise.all([createUser(ls), createUser(ls)]);
  });
  afterAll(() => ls.stop());

  test("none: 'No active rooms.'; then oldest first, members counting sockets", async () => {
    const j = await Sock.connect(ls, x, "json");
    const t = await Sock.connect(ls, x, "text");
    const yj = await Sock.connect(ls, y, "json");
    const yt = await Sock.connect(ls, y, "text");

    j.send({ type: "list_rooms" });
    await j.expect({ type: "rooms", rooms: [] }, "[System] No active rooms.");
    t.send({ type: "list_rooms" });
    await t.expect({ type: "rooms", rooms: [] }, "[System] No active rooms.");

    const before = Date.now();
    await j.create("first");
    await Bun.sleep(5);
    await yt.create("second");
    await Bun.sleep(5);
    await t.create("third");
    const after = Date.now();
    // first: 1 socket; second: 3 sockets (two of one user); third: none.
    await j.join("first", 1);
    await t.join("second", 1);
    await yj.join("second", 2);
    await yt.join("second", 3);

    j.send({ type: "list_rooms" });
    const ev = await j.event();
    expect(ev.type).toBe("rooms");
    const rooms = ev.rooms as Ev[];
    expect(rooms).toEqual([
      { name: "first", creator: x.id, members: 1, created_at: expect.stringMatching(ISO_UTC) },
      { name: "second", creator: y.id, members: 3, created_at: expect.stringMatching(ISO_UTC) },
      { name: "third", creator: x.id, members: 0, created_at: expect.stringMatching(ISO_UTC) },
    ]);
    const times = rooms.map((r) => Date.parse(r.created_at as string));
    for (const ms of times) {
      expect(ms).toBeGreaterThanOrEqual(before - 1);
      expect(ms).toBeLessThanOrEqual(after + 1);
    }
    expect([...times].sort((p, q) => p - q)).toEqual(times);

    const created = (r: Ev) => (r.created_at as string).slice(0, 19).replace("T", " ");
    const expected = [
      "[System] Active Rooms:",
      ...rooms.map(
        (r) =>
          `  - ${r.name} (Creator: ${r.creator}, Members: ${r.members}, Created: ${created(r)})`,
      ),
    ].join("\n");
    expect(ev.text).toBe(expected);
    t.send({ type: "list_rooms" });
    expect(await t.frame()).toBe(expected);
    await quietAll([j, t, yj, yt]);

    // Leaving and closing show up in the list.
    yt.send({ type: "leave_room" });
    await yt.expectLeft("second");
    await yt.expectUpdate(null);
    j.send({ type: "close_room", room_name: "third" });
    await j.expectClosed("third", x.id, true);
    const now = await listRooms(j);
    expect(now.map((r) => [r.name, r.members])).toEqual([
      ["first", 1],
      ["second", 2],
    ]);
  });
});
