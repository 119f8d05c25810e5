// ROOM_FANOUT_SLICE: a room's sockets in topic slices, the first slice at once and each further
// one in a later turn. Unit tests of the slicer, then a real server with slices of 4: every socket
// still gets every message exactly once and in order, a sender past the first slice gets its echo
// before its bot reply and before later answers, a leaver gets what came before its room_left, and
// a joiner gets nothing older than its room_joined.
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { loadConfig } from "../src/config.ts";
import { Slices } from "../src/ws/slices.ts";
import { Client, createUser, startServer, type TestServer, type TestUser } from "./helpers.ts";

setDefaultTimeout(20_000);
type Ev = Record<string, unknown>;

describe("Slices", () => {
  test("fills the first slice with room; a slice emptied is refilled first; 0 is one topic", () => {
    const s = new Slices(2);
    expect([1, 2, 3, 4, 5].map(() => s.assign("json", "r"))).toEqual([0, 0, 1, 1, 2]);
    expect(s.count("json", "r")).toBe(3);
    expect(s.count("text", "r")).toBe(1);
    s.release("json", "r", 0);
    expect(s.assign("json", "r")).toBe(0);
    expect(s.topic("json", "r", 0)).toBe("r:j:r");
    expect(s.topic("text", "r", 2)).toBe("r:t:r#2");
    // Empty slices at the end go; one in the middle stays for the next joiner.
    s.release("json", "r", 2);
    expect(s.count("json", "r")).toBe(2);
    s.release("json", "r", 0);
    s.release("json", "r", 0);
    expect(s.count("json", "r")).toBe(2);
    expect(s.assign("json", "r")).toBe(0);
    for (const k of [0, 1, 1]) s.release("json", "r", k);
    expect(s.tracked).toBe(0);
    expect(s.count("json", "r")).toBe(1);
    // Two rooms sliced, one shrinks back to one slice: the other still counts its slices.
    for (let i = 0; i < 3; i++) s.assign("json", "a");
    for (let i = 0; i < 3; i++) s.assign("text", "b");
    s.release("json", "a", 1);
    expect(s.count("json", "a")).toBe(1);
    expect(s.count("text", "b")).toBe(2);
    const off = new Slices(0);
    expect([1, 2, 3].map(() => off.assign("json", "r"))).toEqual([0, 0, 0]);
    expect(off.count("json", "r")).toBe(1);
    expect(off.tracked).toBe(0);
  });

  test("deferred publishes go one per turn, in order; flush sends the rest at once", async () => {
    const s = new Slices(2);
    const done: number[] = [];
    for (let i = 0; i < 4; i++) s.defer(() => done.push(i));
    expect(done).toEqual([]);
    await new Promise((r) => setImmediate(r));
    expect(done).toEqual([0]);
    expect(s.pending).toBe(3);
    s.flush();
    expect(done).toEqual([0, 1, 2, 3]);
    expect(s.pending).toBe(0);
    s.defer(() => done.push(4));
    await Bun.sleep(5);
    expect(done).toEqual([0, 1, 2, 3, 4]);
  });

  test("up to 256 waiting, one a turn; past that a quarter a turn: the queue stays a few turns long", async () => {
    const s = new Slices(2);
    let ran = 0;
    const turn = () => new Promise((r) => setImmediate(r));
    for (let i = 0; i < 256; i++) s.defer(() => ran++);
    await turn();
    expect(ran).toBe(1);
    await turn();
    expect(ran).toBe(2);
    for (let i = 0; i < 1000 - 254; i++) s.defer(() => ran++);
    expect(s.pending).toBe(1000);
    await turn();
    expect(ran).toBe(2 + 250);
    await turn();
    expect(ran).toBe(2 + 250 + 188);
    // 562 left: quarters down to 256, then one a turn.
    for (let i = 0; i < 600 && s.pending > 0; i++) await turn();
    expect(s.pending).toBe(0);
    expect(ran).toBe(1002);
  });

  test("ROOM_FANOUT_SLICE: default 64, 0 allowed, anything else negative or not a number refused", () => {
    expect(loadConfig({}).roomFanoutSlice).toBe(64);
    expect(loadConfig({ ROOM_FANOUT_SLICE: "0" }).roomFanoutSlice).toBe(0);
    expect(() => loadConfig({ ROOM_FANOUT_SLICE: "-1" })).toThrow(/^ROOM_FANOUT_SLICE:/);
    expect(() => loadConfig({ ROOM_FANOUT_SLICE: "lots" })).toThrow(/^ROOM_FANOUT_SLICE:/);
  });
});

describe("ROOM_FANOUT_SLICE=4 on a real server", () => {
  let srv: TestServer;
  let users: TestUser[];
  beforeAll(async () => {
    srv = await startServer({ ROOM_FANOUT_SLICE: "4", RATE_LIMIT_CAPACITY: "10000" });
    users = await Promise.all(Array.from({ length: 4 }, () => createUser(srv)));
  });
  afterAll(async () => {
    await srv?.stop();
  });

  let n = 0;
  const fresh = () => `slices-${++n}-${Date.now().toString(36)}`;

  async function member(i: number, room: string, format: "json" | "text" = "json") {
    const c = await Client.connect(srv, (users[i % users.length] as TestUser).token, format);
    c.send({ type: "join_room", room_name: room });
    await c.take(2); // room_joined (or its line), room_update
    return c;
  }

  async function makeRoom(): Promise<string> {
    const room = fresh();
    const c = await Client.connect(srv, (users[0] as TestUser).token);
    c.send({ type: "create_room", room_name: room });
    expect(await c.json()).toMatchObject({ type: "room_created" });
    c.close();
    return room;
  }

  test("14 JSON and 6 text sockets, senders in the first and the last slice: every message once, in seq order", async () => {
    const room = await makeRoom();
    const json: Client[] = [];
    for (let i = 0; i < 14; i++) json.push(await member(i, room));
    const text: Client[] = [];
    for (let i = 0; i < 6; i++) text.push(await member(i, room, "text"));
    const first = json[0] as Client;
    const last = json[13] as Client; // slice 3
    const lastText = text[5] as Client; // text slice 1
    for (let k = 0; k < 20; k++) {
      first.send({ type: "message", content: `f${k}` });
      last.send({ type: "message", content: `l${k}` });
      lastText.send({ type: "message", content: `t${k}` });
    }
    for (const c of json) {
      const got: Ev[] = [];
      while (got.length < 60) {
        const e = await c.json(5000);
        if (e.type === "message") got.push(e);
      }
      expect(got.map((e) => e.seq)).toEqual(Array.from({ length: 60 }, (_, i) => i + 1));
      for (const p of ["f", "l", "t"])
        expect(got.map((e) => e.content as string).filter((x) => x.startsWith(p))).toEqual(
          Array.from({ length: 20 }, (_, k) => `${p}${k}`),
        );
      expect(await c.stray()).toEqual([]);
    }
    for (const c of text) {
      const lines: string[] = [];
      while (lines.length < 60) {
        const line = await c.next(5000);
        if (line.includes("says: ") || line.startsWith("You wrote: ")) lines.push(line);
      }
      const own = c === lastText;
      expect(lines.filter((l) => l.startsWith("You wrote: ")).length).toBe(own ? 20 : 0);
      expect(lines.filter((l) => l.endsWith(": t7")).length).toBe(1);
      expect(await c.stray()).toEqual([]);
    }
    for (const c of [...json, ...text]) c.close();
  });

  test("a sender in a later slice gets its echo before the bot's reply and before its next answer", async () => {
    const bot = await startServer({ ROOM_FANOUT_SLICE: "2", BOT_ENABLED: "true" });
    try {
      const u = await Promise.all([createUser(bot), createUser(bot)]);
      const room = fresh();
      const owner = await Client.connect(bot, (u[0] as TestUser).token);
      owner.send({ type: "create_room", room_name: room });
      await owner.json();
      const cs: Client[] = [];
      for (let i = 0; i < 7; i++) {
        const c = await Client.connect(bot, (u[i % 2] as TestUser).token);
        c.send({ type: "join_room", room_name: room });
        await c.take(2);
        cs.push(c);
      }
      const sender = cs[6] as Client; // slice 3
      const busy = cs[0] as Client;
      for (let k = 0; k < 5; k++) {
        busy.send({ type: "message", content: `x${k}` }); // keeps later slices' queue busy
        sender.send({ type: "message", content: "halo" });
        sender.send({ type: "list_rooms" });
        const seen: string[] = [];
        while (!seen.includes("rooms")) {
          const e = await sender.json(5000);
          seen.push(e.type === "message" ? `message:${e.content}` : (e.type as string));
        }
        const mine = seen.indexOf("message:halo");
        expect(mine).toBeGreaterThanOrEqual(0);
        expect(seen.indexOf("bot")).toBe(mine + 1);
        expect(seen.indexOf("rooms")).toBeGreaterThan(mine + 1);
      }
      for (const c of [owner, ...cs]) c.close();
    } finally {
      await bot.stop();
    }
  });

  test("a socket in a later slice that leaves in the same turn as a message still gets it", async () => {
    const room = await makeRoom();
    const [sender, ...rest] = await Promise.all(
      Array.from({ length: 3 }, async () => {
        const u = await createUser(srv);
        const c = await Client.connect(srv, u.token);
        return { u, c };
      }),
    );
    if (sender === undefined) throw new Error("users");
    sender.c.send({ type: "join_room", room_name: room });
    await sender.c.take(2);
    const fill: Client[] = [];
    for (let i = 0; i < 8; i++) fill.push(await member(i, room));
    const leaver = rest[0] as { u: TestUser; c: Client };
    leaver.c.send({ type: "join_room", room_name: room });
    await leaver.c.take(2); // slice 2
    // The hub's own sockets (Sessions is the hub's; reached here to act in one synchronous turn).
    const hub = srv.kabar.hub as unknown as {
      sessions: { socketsOf(user: string): ReadonlySet<import("../src/ws/connection.ts").Conn> };
    };
    const one = (u: TestUser) => [...hub.sessions.socketsOf(u.id)][0];
    const from = one(sender.u);
    const gone = one(leaver.u);
    if (from === undefined || gone === undefined) throw new Error("no conn");
    expect(gone.slice).toBe(2);
    srv.kabar.hub.sendToRoom(from, room, "just before");
    await srv.kabar.hub.leaveRoom(gone);
    expect(await leaver.c.json()).toMatchObject({ type: "message", content: "just before" });
    for (const c of [sender.c, leaver.c, ...fill, ...rest.map((r) => r.c)]) c.close();
  });

  test("a socket of a later slice closing does not flush what waits for the other slices", async () => {
    const room = await makeRoom();
    const sender = await createUser(srv);
    const closer = await createUser(srv);
    const sc = await Client.connect(srv, sender.token);
    sc.send({ type: "join_room", room_name: room });
    await sc.take(2);
    const fill: Client[] = [];
    for (let i = 0; i < 8; i++) fill.push(await member(i, room));
    const cc = await Client.connect(srv, closer.token);
    cc.send({ type: "join_room", room_name: room });
    await cc.take(2); // slice 2
    const hub = srv.kabar.hub as unknown as {
      sessions: { socketsOf(user: string): ReadonlySet<import("../src/ws/connection.ts").Conn> };
      slices: { pending: number };
    };
    const one = (u: TestUser) => [...hub.sessions.socketsOf(u.id)][0];
    const from = one(sender);
    const gone = one(closer);
    if (from === undefined || gone === undefined) throw new Error("no conn");
    expect(gone.slice).toBe(2);
    // In one turn: a message (slices 1 and 2 wait for later turns), then the socket's close as
    // Bun reports it. The closed socket cannot get the message: the rest waits its turns.
    srv.kabar.hub.sendToRoom(from, room, "before a close");
    const waiting = hub.slices.pending;
    expect(waiting).toBeGreaterThan(0);
    srv.kabar.hub.close(gone);
    expect(hub.slices.pending).toBe(waiting);
    for (const c of fill)
      expect(await c.json()).toMatchObject({ type: "message", content: "before a close" });
    for (const c of [sc, cc, ...fill]) c.close();
  });

  test("joins and leaves in later slices while a sender streams: nothing older than room_joined, nothing lost before room_left", async () => {
    const room = await makeRoom();
    const stay: Client[] = [];
    for (let i = 0; i < 9; i++) stay.push(await member(i, room)); // slices 0–2
    const sender = stay[0] as Client;
    let sending = true;
    let sent = 0;
    const pump = (async () => {
      const until = Date.now() + 15_000;
      while (sending && sent < 5000 && Date.now() < until) {
        sender.send({ type: "message", content: `m${++sent}` });
        await Bun.sleep(1);
      }
    })();
    const problems: string[] = [];
    try {
      for (let round = 0; round < 12; round++) {
        const c = await Client.connect(srv, (users[round % users.length] as TestUser).token);
        c.send({ type: "join_room", room_name: room });
        let j: Ev;
        do j = await c.json(5000);
        while (j.type !== "room_joined");
        let expected = (j.seq as number) + 1;
        let got = 0;
        while (got < 10) {
          const e = await c.json(5000);
          if (e.type !== "message") continue;
          got++;
          if (e.seq !== expected)
            problems.push(`round ${round}: seq ${e.seq}, expected ${expected}`);
          expected = (e.seq as number) + 1;
        }
        c.send({ type: "leave_room" });
        // Up to room_left: still each seq once, in order.
        for (;;) {
          const e = await c.json(5000);
          if (e.type === "room_left") break;
          if (e.type !== "message") continue;
          if (e.seq !== expected)
            problems.push(`round ${round}: seq ${e.seq}, expected ${expected}`);
          expected = (e.seq as number) + 1;
        }
        c.close();
      }
    } finally {
      sending = false;
      await pump;
    }
    expect(problems).toEqual([]);
    // A member that stayed (slice 2) has every message, once, in order.
    const far = stay[8] as Client;
    const seqs: number[] = [];
    while (seqs.length < sent) {
      const e = await far.json(5000);
      if (e.type === "message") seqs.push(e.seq as number);
    }
    expect(seqs).toEqual(Array.from({ length: sent }, (_, i) => i + 1));
    for (const c of stay) c.close();
  });
});
