// WebSocket protocol abuse over raw TCP (test/tcp-raw.ts): each broken frame gets the RFC 6455
// answer — a close frame with the code the RFC names (1002 protocol error, 1007 invalid UTF-8,
// 1009 too big) and the end of the connection — while a normal pair of clients chats on. Valid
// but unusual frames (fragments with a ping between them, pings, any valid close code) get their
// normal answer. Bad handshakes and malformed requests get an HTTP refusal (426, 431, 400...).
// Connections that never finish their handshake — silent, half a request, or
// slowloris (one byte a second) — are dropped by Bun's HTTP timeout (measured here: ~10 s, at most
// 16 s, however slowly the bytes keep coming), and 2,000 of them at once do not slow a client
// that logs in, connects and chats meanwhile.
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import {
  Client,
  createUser,
  login,
  startServer,
  type TestServer,
  type TestUser,
} from "./helpers.ts";
import { closeFrame, frame, OP, RawConn, upgradeRequest } from "./tcp-raw.ts";

setDefaultTimeout(60_000);

let srv: TestServer;
let alice: TestUser;
let bob: TestUser;
let carol: TestUser;

beforeAll(async () => {
  srv = await startServer({ BOT_ENABLED: "false", LOG_LEVEL: "info" });
  [alice, bob, carol] = await Promise.all([createUser(srv), createUser(srv), createUser(srv)]);
});
afterAll(() => srv.stop());

/** An upgraded raw connection of `user`, its welcome frame read. */
async function upgraded(user: TestUser): Promise<RawConn> {
  const c = await RawConn.open(srv.port);
  c.write(upgradeRequest(`/api/v1/ws?token=${user.token}`));
  expect((await c.head()).status).toBe(101);
  expect(await c.until(() => c.frames().length >= 1, 2000)).toBe(true);
  return c;
}

/** Two ordinary clients in one room: `check()` sends a message and expects it delivered. */
async function chatPair(): Promise<{ check: () => Promise<number>; close: () => void }> {
  const a = await Client.connect(srv, alice.token);
  const b = await Client.connect(srv, bob.token);
  const room = `abuse_${Date.now()}`;
  a.send({ type: "create_room", room_name: room });
  await a.next();
  a.send({ type: "join_room", room_name: room });
  await a.take(2);
  b.send({ type: "join_room", room_name: room });
  await b.take(2);
  let n = 0;
  return {
    async check() {
      const t0 = performance.now();
      a.send({ type: "message", content: `still here ${++n}` });
      expect(JSON.parse(await a.next()).content).toBe(`still here ${n}`);
      expect(JSON.parse(await b.next()).content).toBe(`still here ${n}`);
      return performance.now() - t0;
    },
    close() {
      a.close();
      b.close();
    },
  };
}

const LIST = '{"type":"list_rooms"}';

describe("broken frames get the RFC 6455 close", () => {
  const cases: Array<[string, Buffer, number, string]> = [
    [
      "an unmasked client frame",
      frame({ opcode: OP.text, payload: LIST, masked: false }),
      1002,
      "masked",
    ],
    [
      "a fragmented ping (FIN=0)",
      frame({ opcode: OP.ping, payload: "x", fin: false }),
      1002,
      "fragmented control",
    ],
    [
      "a ping of 126 bytes (control frames carry at most 125)",
      frame({ opcode: OP.ping, payload: Buffer.alloc(126) }),
      1002,
      "too big control",
    ],
    [
      "RSV1 set without an extension",
      frame({ opcode: OP.text, payload: LIST, rsv: 0b100 }),
      1002,
      "RSV1",
    ],
    ["RSV2 set", frame({ opcode: OP.text, payload: LIST, rsv: 0b010 }), 1002, "RSV2 or RSV3"],
    ["RSV3 set", frame({ opcode: OP.text, payload: LIST, rsv: 0b001 }), 1002, "RSV2 or RSV3"],
    ["reserved data opcode 0x3", frame({ opcode: 0x3, payload: "x" }), 1002, "invalid opcode"],
    ["reserved control opcode 0xB", frame({ opcode: 0xb, payload: "x" }), 1002, "invalid opcode"],
    [
      "a continuation frame with no message started",
      frame({ opcode: OP.cont, payload: "x" }),
      1002,
      "continuation",
    ],
    [
      "a new text frame inside a fragmented message",
      Buffer.concat([
        frame({ opcode: OP.text, payload: "{", fin: false }),
        frame({ opcode: OP.text, payload: "}" }),
      ]),
      1002,
      "inside a fragmented",
    ],
    ["close code 0", closeFrame(0), 1002, "invalid close code"],
    ["close code 999", closeFrame(999), 1002, "invalid close code"],
    ["close code 1004 (reserved)", closeFrame(1004), 1002, "invalid close code"],
    ["close code 1005 (never sent)", closeFrame(1005), 1002, "invalid close code"],
    ["close code 1006 (never sent)", closeFrame(1006), 1002, "invalid close code"],
    ["close code 1015 (never sent)", closeFrame(1015), 1002, "invalid close code"],
    ["close code 5000", closeFrame(5000), 1002, "invalid close code"],
    [
      "a close payload of one byte",
      frame({ opcode: OP.close, payload: Buffer.from([3]) }),
      1002,
      "close payload",
    ],
    [
      "a close reason that is not UTF-8",
      frame({ opcode: OP.close, payload: Buffer.from([0x03, 0xe8, 0xff, 0xfe]) }),
      1007,
      "UTF-8",
    ],
    [
      "a text frame that is not UTF-8",
      frame({ opcode: OP.text, payload: Buffer.from([0x7b, 0xff, 0x7d]) }),
      1007,
      "UTF-8",
    ],
    [
      "a text frame with an encoded surrogate (CESU)",
      frame({ opcode: OP.text, payload: Buffer.from([0xed, 0xa0, 0x80]) }),
      1007,
      "UTF-8",
    ],
    [
      "a frame header announcing 2^63 bytes",
      Buffer.from([0x81, 0xff, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0]),
      1009,
      "too big",
    ],
  ];
  let pair: Awaited<ReturnType<typeof chatPair>>;
  beforeAll(async () => {
    pair = await chatPair();
  });
  afterAll(() => pair.close());

  for (const [name, bytes, code, reason] of cases) {
    test(`${name} → close ${code}`, async () => {
      const c = await upgraded(carol);
      c.write(bytes);
      expect(await c.until(() => c.isEnded, 3000)).toBe(true);
      const close = c.frames().find((f) => f.opcode === OP.close);
      expect(close?.payload.readUInt16BE(0)).toBe(code);
      expect(close?.payload.subarray(2).toString()).toContain(reason);
      // Nothing but the welcome and the close: the frame never reached a handler.
      expect(c.frames().map((f) => f.opcode)).toEqual([OP.text, OP.close]);
      await pair.check();
    });
  }

  test("the server counts none of the closed sockets", async () => {
    await Bun.sleep(50);
    const health = (await (await fetch(`${srv.api}/ws/health`)).json()) as {
      active_connections: number;
    };
    expect(health.active_connections).toBe(2); // the chatting pair
  });
});

describe("unusual but valid frames get their normal answer", () => {
  test("a message in three fragments with a ping between them: pong, then the answer", async () => {
    const c = await upgraded(carol);
    c.write(
      Buffer.concat([
        frame({ opcode: OP.text, payload: '{"type":"li', fin: false }),
        frame({ opcode: OP.ping, payload: "between" }),
        frame({ opcode: OP.cont, payload: "st_ro", fin: false }),
        frame({ opcode: OP.cont, payload: 'oms"}' }),
      ]),
    );
    await c.until(() => c.frames().length >= 3, 2000);
    const [, pong, answer] = c.frames();
    expect(pong?.opcode).toBe(OP.pong);
    expect(pong?.payload.toString()).toBe("between");
    expect(JSON.parse(answer?.payload.toString() ?? "{}").type).toBe("rooms");
    c.destroy();
  });

  test("a ping with 125 bytes is answered by a pong with the same bytes", async () => {
    const c = await upgraded(carol);
    const payload = Buffer.from("p".repeat(125));
    c.write(frame({ opcode: OP.ping, payload }));
    const pong = await c.frame((f) => f.opcode === OP.pong);
    expect(pong?.payload.equals(payload)).toBe(true);
    c.destroy();
  });

  for (const code of [1000, 1001, 3000, 4999]) {
    test(`close code ${code} is echoed and the connection ends`, async () => {
      const c = await upgraded(carol);
      c.write(closeFrame(code, "bye"));
      expect(await c.until(() => c.isEnded, 3000)).toBe(true);
      expect(c.closeCode()).toBe(code);
    });
  }

  test("a binary frame is an invalid_message error, not a protocol error", async () => {
    const c = await upgraded(carol);
    c.write(frame({ opcode: OP.binary, payload: Buffer.from([0xff, 0x00]) }));
    const answer = await c.frame(
      (f) => f.opcode === OP.text && f.payload.includes("invalid_message"),
    );
    expect(answer).toBeDefined();
    expect(c.isEnded).toBe(false);
    c.destroy();
  });
});

describe("bad handshakes and requests get an HTTP refusal, never an upgrade", () => {
  const KEY = "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==";
  const UP = ["Upgrade: websocket", "Connection: Upgrade"];
  const req = (lines: string[], path = "/api/v1/ws?token=TOKEN") =>
    [`GET ${path} HTTP/1.1`, "Host: 127.0.0.1", ...lines, "", ""].join("\r\n");
  const cases: Array<[string, () => string, number | "closed"]> = [
    ["no Sec-WebSocket-Key", () => req([...UP, "Sec-WebSocket-Version: 13"]), 426],
    [
      "a key that is not 16 bytes",
      () => req([...UP, "Sec-WebSocket-Key: short", "Sec-WebSocket-Version: 13"]),
      426,
    ],
    ["Sec-WebSocket-Version 8", () => req([...UP, KEY, "Sec-WebSocket-Version: 8"]), 426],
    [
      "POST instead of GET",
      () => req([...UP, KEY, "Sec-WebSocket-Version: 13"]).replace("GET", "POST"),
      404,
    ],
    ["a 100 kB header", () => req([`X-Big: ${"a".repeat(100_000)}`]), 431],
    ["3,000 header lines", () => req(Array.from({ length: 3000 }, (_, i) => `X-H${i}: v`)), 431],
    ["a 100 kB URL", () => req([...UP, KEY], `/api/v1/ws?token=${"a".repeat(100_000)}`), 431],
    ["binary garbage", () => "\x00\x01\x02GARBAGE\r\n\r\n", 400],
    ["no Host header", () => "GET /api/v1/ws/health HTTP/1.1\r\n\r\n", 400],
    [
      "Content-Length and Transfer-Encoding together (smuggling)",
      () =>
        "POST /api/v1/ws/health HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
      400,
    ],
    ["an unknown method", () => "FOO /api/v1/ws/health HTTP/1.1\r\nHost: x\r\n\r\n", "closed"],
  ];
  for (const [name, make, want] of cases) {
    test(`${name} → ${want}`, async () => {
      const c = await RawConn.open(srv.port);
      c.write(make().replace("TOKEN", alice.token));
      await c.until((b) => b.includes("\r\n\r\n") || c.isEnded, 3000);
      if (want === "closed") {
        expect(c.isEnded).toBe(true);
        expect(c.received.length).toBe(0);
      } else expect((await c.head()).status).toBe(want);
      c.destroy();
      expect((await fetch(`${srv.api}/ws/health`)).status).toBe(200);
    });
  }
});

describe("handshakes that never finish", () => {
  test("silent, half-sent and slowloris connections are dropped in ~10 s; 2,000 of them starve no one", async () => {
    const t0 = performance.now();
    const silent = await RawConn.open(srv.port);
    const half = await RawConn.open(srv.port);
    half.write(`GET /api/v1/ws?token=${alice.token} HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: webso`);
    // Slowloris: a request one byte per second, and another that adds a header every 2 s.
    const byByte = await RawConn.open(srv.port);
    const request = `GET /api/v1/ws?token=${alice.token} HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Pad: ${"a".repeat(60)}`;
    let at = 0;
    const drip = setInterval(() => byByte.write(request[at++ % request.length] as string), 1000);
    const byHeader = await RawConn.open(srv.port);
    byHeader.write("GET /api/v1/ws/health HTTP/1.1\r\nHost: 127.0.0.1\r\n");
    let headers = 0;
    const trickle = setInterval(() => byHeader.write(`X-H${++headers}: y\r\n`), 2000);
    // 2,000 connections that never send a byte, from 8 source addresses.
    const crowd = await Promise.all(
      Array.from({ length: 2000 }, (_, i) => RawConn.open(srv.port, `127.0.40.${1 + (i % 8)}`)),
    );
    const opened = performance.now() - t0;

    // Meanwhile: a login, a new socket, and a chat, each well within a normal time.
    const served: number[] = [];
    const pair = await chatPair();
    for (let i = 0; i < 10; i++) {
      const t = performance.now();
      expect((await login(srv, carol.email, carol.password)).status).toBe(200);
      const c = await Client.connect(srv, carol.token);
      c.close();
      served.push(performance.now() - t);
      served.push(await pair.check());
      await Bun.sleep(200);
    }
    pair.close();

    const slow = [silent, half, byByte, byHeader];
    await Promise.race([Promise.all([...slow, ...crowd].map((c) => c.ended)), Bun.sleep(20_000)]);
    clearInterval(drip);
    clearInterval(trickle);
    // Seen once in a CI run on a loaded machine: one of the 2,000 outlived the 20 s. Stragglers
    // get 15 s more; every one must still be dropped, and all but a handful within the bound.
    const late = crowd.filter((c) => c.endedAt === null);
    if (late.length > 0)
      await Promise.race([Promise.all(late.map((c) => c.ended)), Bun.sleep(15_000)]);
    const ended = (c: RawConn) => (c.endedAt === null ? Number.POSITIVE_INFINITY : c.endedAt - t0);
    const slowEnds = slow.map(ended);
    const crowdEnds = crowd.map(ended).sort((x, y) => x - y);
    console.log(
      `slow handshakes dropped after ${slowEnds.map((t) => (t / 1000).toFixed(1)).join(", ")} s; ` +
        `2,000 silent (opened in ${Math.round(opened)} ms) dropped between ${((crowdEnds[0] as number) / 1000).toFixed(1)} and ${((crowdEnds.at(-1) as number) / 1000).toFixed(1)} s; ` +
        `a login + connect or a chat round trip meanwhile took at most ${Math.round(Math.max(...served))} ms`,
    );
    for (const t of slowEnds) {
      expect(t).toBeGreaterThan(8000);
      expect(t).toBeLessThan(17_000 + opened);
    }
    for (const t of crowdEnds) {
      expect(t).toBeGreaterThan(8000);
      expect(t).toBeLessThan(35_000);
    }
    expect(crowdEnds.filter((t) => t >= 17_000 + opened).length).toBeLessThanOrEqual(5);
    // The slowloris connections were still sending when they were dropped.
    expect(at).toBeGreaterThan(5);
    expect(headers).toBeGreaterThan(3);
    // None of them was ever answered, let alone upgraded.
    for (const c of [...slow, ...crowd]) expect(c.received.length).toBe(0);
    expect(Math.max(...served)).toBeLessThan(2000);
    const health = (await (await fetch(`${srv.api}/ws/health`)).json()) as {
      active_connections: number;
    };
    expect(health.active_connections).toBe(0);
  });
});
