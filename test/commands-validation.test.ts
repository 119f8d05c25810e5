// Frame validation, the bot and command-registry extension against a real server, in both
// formats: which error each bad frame gets (never a schema dump), that the socket stays usable
// after every error, the seed's bot rules, and extra handlers added through `options.handlers`.
// Every JSON frame received is checked against the TypeBox `ServerEvent` / `Events` schemas.
// The protocol-aware client is in protocol-client.ts.
import { afterAll, afterEach, beforeAll, describe, expect, test } from "bun:test";
import { Type } from "@sinclair/typebox";
import { events } from "../src/protocol.ts";
import { handler } from "../src/ws/handler.ts";
import { defaultHandlers } from "../src/ws/handlers.ts";
import { createUser, startServer, type TestServer, type TestUser } from "./helpers.ts";
import {
  closeOpened,
  ENV,
  type Ev,
  FMTS,
  type Fmt,
  fresh,
  ISO_UTC,
  parseEvent,
  quietAll,
  Sock,
} from "./protocol-client.ts";

/** The bot's Lorem Ipsum sentences (the seed says only "a random Lorem Ipsum sentence"). */
const LOREM_SENTENCES = [
  "Lorem ipsum dolor sit amet, consectetur adipiscing elit.",
  "Sed do eiusmod tempor incididunt ut labore et dolore magna aliqua.",
  "Ut enim ad minim veniam, quis nostrud exercitation ullamco laboris.",
  "Duis aute irure dolor in reprehenderit in voluptate velit esse cillum dolore.",
  "Excepteur sint occaecat cupidatat non proident, sunt in culpa qui officia.",
  "Curabitur pretium tincidunt lacus, nulla gravida orci a odio.",
];
const INVALID_JSON = "[System] Invalid JSON format. Please send valid JSON.";
const unknownType = (t: string) => `[System] Unknown message type: '${t}'`;
const SCHEMA_WORDS = /anyOf|allOf|oneOf|pattern|schema|\[Kind\]|"type"|\$id/i;

/** The next frame is an `invalid_message` error with a short, one-line, schema-free reason. */
async function expectInvalid(s: Sock): Promise<string> {
  const frame = await s.client.next();
  let text = frame;
  if (s.fmt === "json") {
    const ev = parseEvent(frame);
    expect(ev).toEqual({ type: "error", code: "invalid_message", text: expect.any(String) });
    text = ev.text as string;
  }
  expect(text).toMatch(/^\[System\] Invalid message: \S[^\n]*$/);
  expect(text).not.toMatch(SCHEMA_WORDS);
  expect(text.length).toBeLessThan(160);
  return text;
}

/** The socket still works: a valid command gets its exact answer. */
async function usable(s: Sock): Promise<void> {
  const room = fresh("ok");
  s.send({ type: "create_room", room_name: room });
  await s.expectCreated(room);
}

/** Sends each bad frame; expects `invalid_message` for it and a working socket after it. */
async function allInvalid(s: Sock, frames: unknown[]): Promise<void> {
  for (const frame of frames) {
    s.send(frame);
    await expectInvalid(s);
    await usable(s);
  }
  await s.quiet();
}

// ---------------------------------------------------------------- validation

describe("frame validation", () => {
  let srv: TestServer;
  let u1: TestUser;
  let u2: TestUser;
  beforeAll(async () => {
    srv = await startServer(ENV);
    [u1, u2] = await Promise.all([createUser(srv), createUser(srv)]);
  });
  afterEach(() => {
    closeOpened();
  });
  afterAll(() => srv.stop());
  const connect = (user: TestUser, fmt: Fmt) => Sock.connect(srv, user, fmt);

  for (const fmt of FMTS) {
    describe(fmt, () => {
      test("a binary frame → invalid_message", async () => {
        const s = await connect(u1, fmt);
        s.client.ws.send(new TextEncoder().encode(JSON.stringify({ type: "list_rooms" })));
        await expectInvalid(s);
        await usable(s);
        s.client.ws.send(new Uint8Array([0, 1, 2, 255]));
        await expectInvalid(s);
        await usable(s);
        await s.quiet();
      });

      test("JSON that is not an object → invalid_message", async () => {
        const s = await connect(u1, fmt);
        await allInvalid(s, [
          "123",
          "[1]",
          '"str"',
          "null",
          "true",
          "[]",
          '[{"type":"list_rooms"}]',
        ]);
      });

      test("text that is not JSON → invalid_json", async () => {
        const s = await connect(u1, fmt);
        for (const frame of ["{bad", "", "hello", '{"type": "list_rooms"', "{'type': 'x'}"]) {
          s.send(frame);
          await s.expectError("invalid_json", INVALID_JSON);
          await usable(s);
        }
        await s.quiet();
      });

      test("missing or ill-formed type → invalid_message", async () => {
        const s = await connect(u1, fmt);
        await allInvalid(s, [
          {},
          { room_name: "x" },
          { type: "Bad-Type" },
          { type: "LIST_ROOMS" },
          { type: "list rooms" },
          { type: "" },
          { type: 5 },
          { type: null },
          { type: ["list_rooms"] },
        ]);
      });

      test("a well-formed type with no handler → unknown_type, before field checks", async () => {
        const s = await connect(u1, fmt);
        for (const type of ["dance", "constructor", "__proto__", "to_string"]) {
          s.send({ type });
          await s.expectError("unknown_type", unknownType(type));
          await usable(s);
        }
        s.send({ type: "dance", room_name: "not a room name", content: "" });
        await s.expectError("unknown_type", unknownType("dance"));
        await usable(s);
        await s.quiet();
      });

      test("bad room_name → invalid_message (create, join, close)", async () => {
        const s = await connect(u1, fmt);
        const bad: unknown[] = [
          "has space",
          "x".repeat(101),
          "",
          "bad/name",
          "naïve",
          "dot.name",
          5,
          null,
          ["room"],
        ];
        for (const type of ["create_room", "join_room", "close_room"]) {
          await allInvalid(
            s,
            bad.map((room_name) => ({ type, room_name })),
          );
        }
        await allInvalid(s, [{ type: "create_room" }, { type: "join_room" }]);
      });

      test("room_name of 100 characters of [a-zA-Z0-9_-] is accepted", async () => {
        const s = await connect(u1, fmt);
        const long = `${fresh("L")}-`.padEnd(100, "x");
        expect(long.length).toBe(100);
        await s.create(long);
        await s.join(long, 1);
        const mixed = `AZ_az-09_${Date.now()}`;
        await s.create(mixed);
        s.send({ type: "close_room", room_name: mixed });
        await s.expectClosed(mixed, u1.id, true);
        await s.quiet();
      });

      test("bad content → invalid_message (message, direct, broadcast), even when not in a room", async () => {
        const s = await connect(u1, fmt);
        await connect(u2, "json"); // online, so only the content can be wrong
        const bad: unknown[] = [
          "",
          "   ",
          " \n\t ",
          `  ${"y".repeat(10001)}  `,
          "z".repeat(10001),
          5,
          null,
          { text: "hi" },
        ];
        for (const content of bad) {
          await allInvalid(s, [
            { type: "message", content },
            { type: "direct", user_id: u2.id, content },
            { type: "broadcast", content }, // shape is checked before permission
          ]);
        }
        await allInvalid(s, [
          { type: "message" },
          { type: "direct", user_id: u2.id },
          { type: "broadcast" },
        ]);
      });

      test("10000 characters plus surrounding spaces are accepted and delivered trimmed", async () => {
        const s = await connect(u1, fmt);
        const mj = await connect(u2, "json");
        const mt = await connect(u2, "text");
        const room = fresh();
        await s.create(room);
        await s.join(room, 1);
        await mj.join(room, 2);
        await mt.join(room, 3);
        const body = `a${"b".repeat(9998)}c`;
        expect(body.length).toBe(10000);
        s.send({ type: "message", content: `  \n${body}\t  ` });
        await s.expectMessage(room, u1.id, body, true);
        await mj.expectMessage(room, u1.id, body, false);
        await mt.expectMessage(room, u1.id, body, false);
        await quietAll([s, mj, mt]);
        // Lengths are UTF-16 code units: 5000 surrogate pairs are 10000 units.
        const emoji = "😀".repeat(5000);
        s.send({ type: "message", content: ` ${emoji} ` });
        await s.expectMessage(room, u1.id, emoji, true);
        await mj.expectMessage(room, u1.id, emoji, false);
        await mt.expectMessage(room, u1.id, emoji, false);
        s.send({ type: "message", content: `${emoji}x` });
        await expectInvalid(s);
        await quietAll([s, mj, mt]);
        // The same limit for direct messages.
        s.send({ type: "direct", user_id: u2.id, content: ` ${body} ` });
        await s.expect(
          {
            type: "direct",
            id: expect.any(String),
            from: u1.id,
            to: u2.id,
            content: body,
            sent_at: expect.stringMatching(ISO_UTC),
          },
          `You wrote to ${u2.id}: ${body}`,
        );
        expect(JSON.parse(await mj.frame()).content).toBe(body);
        expect(await mt.frame()).toBe(`[Private] User ${u1.id} says: ${body}`);
      });

      test("a user_id that is not a UUID → invalid_message (not user_offline)", async () => {
        const s = await connect(u1, fmt);
        const uuid = u2.id;
        await allInvalid(
          s,
          [
            "not-a-uuid",
            "",
            uuid.replaceAll("-", ""),
            `${uuid}0`,
            ` ${uuid}`,
            uuid.slice(0, 35),
            `${uuid.slice(0, 35)}g`,
            123,
            null,
          ].map((user_id) => ({ type: "direct", user_id, content: "hi" })),
        );
        await allInvalid(s, [{ type: "direct", content: "hi" }]);
      });

      test("shape errors come before state errors", async () => {
        const s = await connect(u1, fmt);
        // Not in a room, but the content is bad: invalid_message, not not_in_room.
        s.send({ type: "message", content: "   " });
        await expectInvalid(s);
        // Not in a room, bad room_name: invalid_message, not not_in_room.
        s.send({ type: "close_room", room_name: "no such room!" });
        await expectInvalid(s);
        // Target offline and not a UUID: invalid_message.
        s.send({ type: "direct", user_id: "nobody", content: "hi" });
        await expectInvalid(s);
        // Bad room_name for a room that exists with a similar name: invalid_message.
        s.send({ type: "join_room", room_name: " x" });
        await expectInvalid(s);
        await usable(s);
        await s.quiet();
      });

      test("unknown extra fields are ignored", async () => {
        const s = await connect(u1, fmt);
        const m = await connect(u2, "json");
        const room = fresh();
        s.send({ type: "create_room", room_name: room, extra: 1, nested: { a: [1, null] } });
        await s.expectCreated(room);
        s.send({ type: "join_room", room_name: room, format: "xml", members: -1 });
        await s.expectJoined(room, 1);
        await s.expectUpdate(room);
        await m.join(room, 2);
        // Fields that look like server fields cannot spoof anything.
        s.send({ type: "message", content: "hi", from: u2.id, room: "elsewhere", id: "x" });
        await s.expectMessage(room, u1.id, "hi", true);
        await m.expectMessage(room, u1.id, "hi", false);
        s.send({ type: "direct", user_id: u2.id, content: "psst", to: u1.id, from: u2.id });
        const dm = (await m.event()) as Ev;
        expect([dm.type, dm.from, dm.to, dm.content]).toEqual(["direct", u1.id, u2.id, "psst"]);
        await s.frame();
        s.send({ type: "leave_room", room_name: "whatever", extra: true });
        await s.expectLeft(room);
        await s.expectUpdate(null);
        await quietAll([s, m]);
      });

      test("a `content` field on a command that has none is an ignored extra field", async () => {
        const s = await connect(u1, fmt);
        const room = fresh();
        s.send({ type: "create_room", room_name: room, content: "" });
        await s.expectCreated(room);
        s.send({ type: "join_room", room_name: room, content: "   " });
        await s.expectJoined(room, 1);
        await s.expectUpdate(room);
        s.send({ type: "leave_room", content: "x".repeat(10001) });
        await s.expectLeft(room);
        await s.expectUpdate(null);
        await s.quiet();
      });
    });
  }
});

// ---------------------------------------------------------------- bot

describe("bot", () => {
  let srv: TestServer;
  let off: TestServer;
  let u1: TestUser;
  let u2: TestUser;
  let v1: TestUser;
  beforeAll(async () => {
    [srv, off] = await Promise.all([
      startServer({ ...ENV, BOT_ENABLED: "true" }),
      startServer({ ...ENV, BOT_ENABLED: "false" }),
    ]);
    [u1, u2, v1] = await Promise.all([createUser(srv), createUser(srv), createUser(off)]);
  });
  afterEach(() => {
    closeOpened();
  });
  afterAll(async () => {
    await srv.stop();
    await off.stop();
  });

  const expectBot = (s: Sock, content: string) =>
    s.expect({ type: "bot", content }, `Bot: ${content}`);

  /** A sender `s` (fmt) and a JSON member in one fresh room. */
  async function pair(fmt: Fmt): Promise<{ s: Sock; m: Sock; room: string }> {
    const s = await Sock.connect(srv, u1, fmt);
    const m = await Sock.connect(srv, u2, "json");
    const room = fresh();
    await s.create(room);
    await s.join(room, 1);
    await m.join(room, 2);
    return { s, m, room };
  }

  /** Sends a message; checks the echo first, then the bot reply (if any) to the sender only. */
  async function say(
    p: { s: Sock; m: Sock; room: string },
    content: string,
    trimmed: string,
  ): Promise<void> {
    p.s.send({ type: "message", content });
    await p.s.expectMessage(p.room, u1.id, trimmed, true);
    await p.m.expectMessage(p.room, u1.id, trimmed, false);
  }

  for (const fmt of FMTS) {
    describe(fmt, () => {
      test("`halo` → `apa kabar`, after the echo, to the sender only", async () => {
        const p = await pair(fmt);
        await say(p, "halo", "halo");
        await expectBot(p.s, "apa kabar");
        await quietAll([p.s, p.m]);
      });

      test("` HALO ` is trimmed and lower-cased → `apa kabar`", async () => {
        const p = await pair(fmt);
        await say(p, " HALO ", "HALO");
        await expectBot(p.s, "apa kabar");
        await say(p, "\tHaLo\n", "HaLo");
        await expectBot(p.s, "apa kabar");
        await quietAll([p.s, p.m]);
      });

      test("contains `nama` → `nama saya abdu` (checked before the vowel rule)", async () => {
        const p = await pair(fmt);
        for (const content of ["siapa nama kamu?", "NAMA", "halo nama", "xnamax"]) {
          await say(p, content, content);
          await expectBot(p.s, "nama saya abdu");
        }
        await quietAll([p.s, p.m]);
      });

      test("contains a vowel → one of the Lorem Ipsum sentences", async () => {
        const p = await pair(fmt);
        for (const content of ["hello world", "halo!", "U", "xyz a"]) {
          await say(p, content, content);
          const frame = await p.s.frame();
          const reply =
            fmt === "json"
              ? (JSON.parse(frame) as Ev)
              : { type: "bot", content: frame.replace(/^Bot: /, "") };
          expect(reply.type).toBe("bot");
          expect(LOREM_SENTENCES).toContain(reply.content as string);
          if (fmt === "text") expect(frame).toBe(`Bot: ${reply.content}`);
          else expect((reply as Ev).text).toBe(`Bot: ${reply.content}`);
        }
        await quietAll([p.s, p.m]);
      });

      test("no vowel → no bot frame", async () => {
        const p = await pair(fmt);
        for (const content of ["xyz", "RHYTHM 123", "!!!"]) {
          await say(p, content, content);
          await quietAll([p.s, p.m]);
        }
      });

      test("no bot reply to direct messages", async () => {
        const s = await Sock.connect(srv, u1, fmt);
        const t = await Sock.connect(srv, u2, "json");
        s.send({ type: "direct", user_id: u2.id, content: "halo" });
        await s.frame();
        await t.frame();
        await quietAll([s, t]);
      });

      test("BOT_ENABLED=false: no bot frame at all", async () => {
        const s = await Sock.connect(off, v1, fmt);
        const room = fresh();
        await s.create(room);
        await s.join(room, 1);
        for (const content of ["halo", "nama", "hello world"]) {
          s.send({ type: "message", content });
          await s.expectMessage(room, v1.id, content, true);
          await s.quiet();
        }
      });
    });
  }
});

// ---------------------------------------------------------------- handler registry

describe("handler registry extension", () => {
  let srv: TestServer;
  let u1: TestUser;
  beforeAll(async () => {
    const handlers = defaultHandlers();
    handlers.set(
      "ping_me",
      handler(Type.Object({ n: Type.Integer({ minimum: 0 }) }), (conn, { n }) => {
        conn.send(events.bot(`pong ${n} for ${conn.userId}`));
      }),
    );
    handlers.set(
      "boom",
      handler(Type.Object({}), () => {
        throw new Error("kaboom");
      }),
    );
    handlers.set(
      "boom_later",
      handler(Type.Object({}), async () => {
        await Bun.sleep(20);
        throw new Error("later kaboom");
      }),
    );
    srv = await startServer(ENV, { handlers });
    u1 = await createUser(srv);
  });
  afterEach(() => {
    closeOpened();
  });
  afterAll(() => srv.stop());

  const UNAVAILABLE = "[System] Service temporarily unavailable. Try again.";
  const pong = (s: Sock, n: number) =>
    s.expect({ type: "bot", content: `pong ${n} for ${u1.id}` }, `Bot: pong ${n} for ${u1.id}`);
  const failures = (type: string) =>
    srv.logs
      .map((l) => JSON.parse(l) as Ev)
      .filter((l) => l.msg === "handler failed" && l.type === type);

  for (const fmt of FMTS) {
    describe(fmt, () => {
      test("an extra command works next to the default ones", async () => {
        const s = await Sock.connect(srv, u1, fmt);
        s.send({ type: "ping_me", n: 7 });
        await pong(s, 7);
        s.send({ type: "ping_me", n: 0, extra: "ignored" });
        await pong(s, 0);
        await usable(s);
        s.send({ type: "ping_you" });
        await s.expectError("unknown_type", unknownType("ping_you"));
        await s.quiet();
      });

      test("its schema is checked: invalid_message with a short reason", async () => {
        const s = await Sock.connect(srv, u1, fmt);
        await allInvalid(s, [
          { type: "ping_me" },
          { type: "ping_me", n: "7" },
          { type: "ping_me", n: 1.5 },
          { type: "ping_me", n: -1 },
          { type: "ping_me", n: null },
        ]);
        s.send({ type: "ping_me", n: 1 });
        await pong(s, 1);
      });

      test("a handler that throws → unavailable, logged, socket still usable", async () => {
        const s = await Sock.connect(srv, u1, fmt);
        const before = failures("boom").length;
        s.send({ type: "boom" });
        await s.expectError("unavailable", UNAVAILABLE);
        const logged = failures("boom");
        expect(logged.length).toBe(before + 1);
        expect(logged.at(-1)?.level).toBe("error");
        expect(String(logged.at(-1)?.error)).toContain("kaboom");
        expect(srv.logs.join("")).not.toContain(u1.token);
        s.send({ type: "ping_me", n: 2 });
        await pong(s, 2);
        await usable(s);
        await s.quiet();
      });

      test("an async handler that rejects → unavailable; frames queued behind it still run", async () => {
        const s = await Sock.connect(srv, u1, fmt);
        const before = failures("boom_later").length;
        s.send({ type: "boom_later" });
        s.send({ type: "ping_me", n: 3 });
        await s.expectError("unavailable", UNAVAILABLE);
        await pong(s, 3);
        expect(failures("boom_later").length).toBe(before + 1);
        expect(String(failures("boom_later").at(-1)?.error)).toContain("later kaboom");
        await usable(s);
        await s.quiet();
      });
    });
  }
});
