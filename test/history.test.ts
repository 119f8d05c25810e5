// Room history, sequence numbers and recovery after a reconnect on one node: seq 1, 2, … per
// room with an epoch; the `history` command with paging; `join_room` with `since` replays exactly
// what was missed (also while others keep sending during the join) or says `recovered: false`.
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { Client, createUser, startServer, type TestServer, type TestUser } from "./helpers.ts";
import { ENV, type Ev, parseEvent } from "./protocol-client.ts";

setDefaultTimeout(30_000);
let seq = 0;
const fresh = (p = "h") => `${p}-${++seq}-${Date.now().toString(36)}`;

const ev = async (c: Client, ms = 3000): Promise<Ev> => parseEvent(await c.next(ms));

async function join(c: Client, room: string, extra: Ev = {}): Promise<Ev> {
  c.send({ type: "join_room", room_name: room, ...extra });
  const joined = await ev(c);
  expect(joined.type).toBe("room_joined");
  expect(await ev(c)).toMatchObject({ type: "room_update", room });
  return joined;
}

/** Sends `n` messages from `c` and reads their echoes; returns the echoes. */
async function say(c: Client, n: number, prefix: string): Promise<Ev[]> {
  for (let i = 1; i <= n; i++) c.send({ type: "message", content: `${prefix}${i}` });
  const out: Ev[] = [];
  while (out.length < n) {
    const e = await ev(c);
    if (e.type === "message") out.push(e);
  }
  return out;
}

describe("one node, default history", () => {
  let srv: TestServer;
  let alice: TestUser;
  let bob: TestUser;
  beforeAll(async () => {
    srv = await startServer({ ...ENV });
    alice = await createUser(srv);
    bob = await createUser(srv);
  });
  afterAll(() => srv.stop());

  test("a room's messages get seq 1, 2, 3 … in one epoch; room_joined tells the latest", async () => {
    const room = fresh();
    const a = await Client.connect(srv, alice.token);
    a.send({ type: "create_room", room_name: room });
    await ev(a);
    const first = await join(a, room);
    expect(first).toMatchObject({ members: 1, seq: 0, epoch: expect.any(String) });
    expect(first).not.toHaveProperty("recovered");
    const echoes = await say(a, 3, "m");
    expect(echoes.map((e) => e.seq)).toEqual([1, 2, 3]);
    expect(new Set(echoes.map((e) => e.epoch))).toEqual(new Set([first.epoch]));
    const b = await Client.connect(srv, bob.token);
    expect(await join(b, room)).toMatchObject({ members: 2, seq: 3, epoch: first.epoch });
    // Another room has its own sequence.
    const other = fresh();
    b.send({ type: "create_room", room_name: other });
    await ev(b);
    b.send({ type: "leave_room" });
    await b.take(2);
    await join(b, other);
    expect((await say(b, 1, "o"))[0]).toMatchObject({ seq: 1 });
    expect(await b.stray()).toEqual([]);
  }, 30_000);

  test("history: newest first page, then `before`, oldest first; text lists the lines", async () => {
    const room = fresh();
    const a = await Client.connect(srv, alice.token);
    a.send({ type: "create_room", room_name: room });
    await ev(a);
    await join(a, room);
    const sent = await say(a, 7, "p");
    a.send({ type: "history", limit: 3 });
    const page1 = await ev(a);
    expect(page1).toMatchObject({ type: "history", room, epoch: sent[0]?.epoch });
    const msgs1 = page1.messages as Ev[];
    expect(msgs1.map((m) => m.seq)).toEqual([5, 6, 7]);
    expect(msgs1[0]).toEqual({
      id: sent[4]?.id,
      room,
      from: alice.id,
      content: "p5",
      sent_at: sent[4]?.sent_at,
      seq: 5,
      epoch: sent[4]?.epoch,
    });
    a.send({ type: "history", room_name: room, before: 5, limit: 10 });
    expect(((await ev(a)).messages as Ev[]).map((m) => m.content)).toEqual([
      "p1",
      "p2",
      "p3",
      "p4",
    ]);
    a.send({ type: "history" });
    expect((await ev(a)).messages as Ev[]).toHaveLength(7);
    const t = await Client.connect(srv, bob.token, "text");
    t.send({ type: "history", room_name: room, before: 3 });
    expect(await t.next()).toBe(
      [
        `[System] History of '${room}': 2 messages`,
        `User ${alice.id} says: p1`,
        `User ${alice.id} says: p2`,
      ].join("\n"),
    );
    t.send({ type: "history" });
    expect(await t.next()).toBe("[System] You are not in any room!");
    t.send({ type: "history", room_name: "no-such-room" });
    expect(await t.next()).toBe("[System] Room 'no-such-room' does not exist!");
    for (const bad of [{ limit: 0 }, { limit: 101 }, { before: 0 }, { limit: "5" }]) {
      a.send({ type: "history", ...bad });
      expect(await ev(a)).toMatchObject({ type: "error", code: "invalid_message" });
    }
  });

  test("recovery: a client that comes back with `since` gets exactly what it missed, then live", async () => {
    const room = fresh();
    const a = await Client.connect(srv, alice.token);
    a.send({ type: "create_room", room_name: room });
    await ev(a);
    await join(a, room);
    const b1 = await Client.connect(srv, bob.token);
    await join(b1, room);
    const seen = await say(a, 3, "before");
    for (let i = 0; i < 3; i++) await ev(b1);
    const last = seen[2] as Ev;
    b1.close();
    await b1.closed;
    await say(a, 4, "missed");
    const b2 = await Client.connect(srv, bob.token);
    b2.send({ type: "join_room", room_name: room, since: { epoch: last.epoch, seq: last.seq } });
    expect(await ev(b2)).toMatchObject({
      type: "room_joined",
      room,
      recovered: true,
      seq: 7,
      epoch: last.epoch,
    });
    expect(await ev(b2)).toMatchObject({ type: "room_update", room });
    const replay = [];
    for (let i = 0; i < 4; i++) replay.push(await ev(b2));
    expect(replay.map((m) => [m.type, m.seq, m.content])).toEqual([
      ["message", 4, "missed1"],
      ["message", 5, "missed2"],
      ["message", 6, "missed3"],
      ["message", 7, "missed4"],
    ]);
    await say(a, 1, "live");
    expect(await ev(b2)).toMatchObject({ type: "message", seq: 8, content: "live1" });
    expect(await b2.stray()).toEqual([]);
  });

  test("recovery while 5 senders keep sending during the join: S+1 … latest, then live, no repeat", async () => {
    const room = fresh();
    const owner = await Client.connect(srv, alice.token);
    owner.send({ type: "create_room", room_name: room });
    await ev(owner);
    const senders = await Promise.all(
      Array.from({ length: 5 }, async () => Client.connect(srv, (await createUser(srv)).token)),
    );
    for (const s of senders) await join(s, room);
    const watcher = await Client.connect(srv, bob.token);
    await join(watcher, room);
    const before = await say(senders[0] as Client, 5, "w");
    for (let i = 0; i < 5; i++) await ev(watcher);
    const since = { epoch: before[4]?.epoch, seq: before[4]?.seq as number };
    watcher.close();
    await watcher.closed;
    // The senders keep sending, 18 each (within the default 100 kept), while the watcher
    // comes back.
    for (let k = 0; k < 18; k++)
      for (const [i, s] of senders.entries()) s.send({ type: "message", content: `s${i}-${k}` });
    const back = await Client.connect(srv, bob.token);
    back.send({ type: "join_room", room_name: room, since });
    const joined = await ev(back);
    expect(joined).toMatchObject({ type: "room_joined", recovered: true });
    const got: number[] = [];
    const total = 5 + 5 * 18;
    while (got.length === 0 || (got[got.length - 1] as number) < total) {
      const e = await ev(back);
      if (e.type === "message") got.push(e.seq as number);
    }
    // Exactly S+1 … latest, in order, none twice, none missing.
    expect(got).toEqual(Array.from({ length: total - since.seq }, (_, i) => since.seq + 1 + i));
    for (const s of senders) s.close();
  });

  test("recovery refused: another epoch, a seq from the future; nothing is replayed", async () => {
    const room = fresh();
    const a = await Client.connect(srv, alice.token);
    a.send({ type: "create_room", room_name: room });
    await ev(a);
    await join(a, room);
    const sent = await say(a, 2, "x");
    const b = await Client.connect(srv, bob.token);
    for (const since of [
      { epoch: "not-the-epoch", seq: 1 },
      { epoch: sent[0]?.epoch, seq: 99 },
    ]) {
      b.send({ type: "join_room", room_name: room, since });
      expect(await ev(b)).toMatchObject({ type: "room_joined", recovered: false, seq: 2 });
      expect(await ev(b)).toMatchObject({ type: "room_update" });
      expect(await b.stray()).toEqual([]);
      b.send({ type: "leave_room" });
      await ev(b);
      await ev(b);
    }
    // Up to date: recovered, nothing to replay.
    b.send({ type: "join_room", room_name: room, since: { epoch: sent[1]?.epoch, seq: 2 } });
    expect(await ev(b)).toMatchObject({ type: "room_joined", recovered: true, seq: 2 });
    expect(await ev(b)).toMatchObject({ type: "room_update" });
    expect(await b.stray()).toEqual([]);
    for (const bad of [{ epoch: 5, seq: 1 }, { epoch: "e" }, { epoch: "e", seq: -1 }, "since"]) {
      b.send({ type: "join_room", room_name: room, since: bad });
      expect(await ev(b)).toMatchObject({ type: "error", code: "invalid_message" });
    }
  });

  test("text format: the same lines as before; replayed messages are their usual lines", async () => {
    const room = fresh();
    const a = await Client.connect(srv, alice.token);
    a.send({ type: "create_room", room_name: room });
    await ev(a);
    await join(a, room);
    const sent = await say(a, 2, "t");
    const t = await Client.connect(srv, bob.token, "text");
    t.send({ type: "join_room", room_name: room, since: { epoch: sent[0]?.epoch, seq: 0 } });
    expect(await t.take(4)).toEqual([
      `[System] Joined room '${room}' successfully!`,
      `ROOM_UPDATE:${room}`,
      `User ${alice.id} says: t1`,
      `User ${alice.id} says: t2`,
    ]);
  });
});

/**
 * A server with `env`, one user and a room that user created and joined: runs `body` with them,
 * then stops the server.
 */
async function inRoom(
  env: Record<string, string>,
  body: (srv: TestServer, u: TestUser, a: Client, room: string) => Promise<void>,
): Promise<void> {
  const srv = await startServer({ ...ENV, ...env });
  try {
    const u = await createUser(srv);
    const a = await Client.connect(srv, u.token);
    const room = fresh();
    a.send({ type: "create_room", room_name: room });
    await ev(a);
    await join(a, room);
    await body(srv, u, a, room);
  } finally {
    await srv.stop();
  }
}

describe("recovery refused after a history overflow and after its TTL; history off", () => {
  test("ROOM_HISTORY_SIZE=3: missing 5 cannot be recovered; the last 3 are kept", () =>
    inRoom({ ROOM_HISTORY_SIZE: "3" }, async (srv, u, a, room) => {
      const sent = await say(a, 6, "o");
      const b = await Client.connect(srv, u.token);
      b.send({ type: "join_room", room_name: room, since: { epoch: sent[0]?.epoch, seq: 1 } });
      expect(await ev(b)).toMatchObject({ type: "room_joined", recovered: false, seq: 6 });
      await ev(b);
      b.send({ type: "history" });
      expect(((await ev(b)).messages as Ev[]).map((m) => m.seq)).toEqual([4, 5, 6]);
      // Within what is kept, recovery works.
      b.send({ type: "leave_room" });
      await b.take(2);
      b.send({ type: "join_room", room_name: room, since: { epoch: sent[0]?.epoch, seq: 3 } });
      expect(await ev(b)).toMatchObject({ type: "room_joined", recovered: true });
      await ev(b);
      expect((await b.take(3)).map((f) => JSON.parse(f).seq)).toEqual([4, 5, 6]);
    }));

  test("ROOM_HISTORY_TTL_SECONDS=1: after it, a new epoch; recovery refused", () =>
    inRoom({ ROOM_HISTORY_TTL_SECONDS: "1" }, async (srv, u, a, room) => {
      const sent = await say(a, 2, "ttl");
      await Bun.sleep(1300);
      const b = await Client.connect(srv, u.token);
      b.send({ type: "join_room", room_name: room, since: { epoch: sent[1]?.epoch, seq: 2 } });
      const joined = await ev(b);
      expect(joined).toMatchObject({ type: "room_joined", recovered: false, seq: 0 });
      expect(joined.epoch).not.toBe(sent[1]?.epoch);
    }));

  test("ROOM_HISTORY_SIZE=0: seqs still given; history empty; recovery only when up to date", () =>
    inRoom({ ROOM_HISTORY_SIZE: "0" }, async (srv, u, a, room) => {
      const sent = await say(a, 2, "z");
      expect(sent.map((m) => m.seq)).toEqual([1, 2]);
      a.send({ type: "history" });
      expect((await ev(a)).messages).toEqual([]);
      const b = await Client.connect(srv, u.token);
      b.send({ type: "join_room", room_name: room, since: { epoch: sent[0]?.epoch, seq: 1 } });
      expect(await ev(b)).toMatchObject({ type: "room_joined", recovered: false });
    }));
});
