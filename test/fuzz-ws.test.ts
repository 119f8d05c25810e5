// Property-based fuzzing of the WebSocket commands against a live server (fast-check): at least
// 10,000 generated frames per run — random and mutated JSON, wrong types, deep nesting, huge
// numbers, long strings, unicode and lone surrogates, control characters, binary frames with
// invalid UTF-8, frames at and over WS_MAX_PAYLOAD_BYTES — spread over every command, on JSON
// and text sockets. Properties: each frame gets exactly the contract's answer, decided here from
// the spec alone (one `error` with the code the spec names, or the command's events in the spec's order, or for a
// state problem one error with a state code), or the close 1009 for an oversized frame; the
// socket answers the next frame; two other users chatting meanwhile get exactly their own
// messages; the server logs no error. The same again (2,000 frames) against a node in cluster
// mode (Redis), where a message's echo comes back through Redis: the answers to later frames
// must still come after it, as on one node. A server with an
// empty rate-limit bucket answers every frame with exactly one `rate_limited`.
//
// The seed is fixed (FUZZ_SEED replays another run; FUZZ_RUNS changes the number of batches of
// 50 frames); on failure the seed, the path and the shrunk counterexample are printed.
// Invalid UTF-8 in *text* frames (a protocol error, close 1007) is in test/ws-abuse.test.ts.
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { Value } from "@sinclair/typebox/value";
import fc from "fast-check";
import { Events, ServerEvent } from "../src/protocol.ts";
import { Client, createUser, startServer, type TestServer, type TestUser } from "./helpers.ts";
import { type RedisServer, redisAvailable, startRedis } from "./redis-server.ts";

setDefaultTimeout(120_000);

const SEED = Number(process.env.FUZZ_SEED ?? 20_261_202);
const RUNS = Number(process.env.FUZZ_RUNS ?? 200);
const CLUSTER_RUNS = Number(process.env.FUZZ_RUNS_CLUSTER ?? 40);
const BATCH = 50;
const MAX_PAYLOAD = 65536;
const SOCKETS = 4; // three JSON sockets, one text socket, one user each

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const ROOM = /^[a-zA-Z0-9_-]{1,100}$/;
const TYPE = /^[a-z_]+$/;
/**
 * The whole answer each well-formed command may get on its own socket, as its event types joined
 * by commas (an error as `error:code`): its events in the spec's order, or one state error.
 */
const ANSWERS: Record<string, RegExp> = {
  create_room: /^(room_created|error:(room_exists|limit_reached))$/,
  join_room:
    /^((room_left,)?room_joined,room_update(,message)*|error:(room_not_found|already_in_room))$/,
  leave_room: /^(room_left,room_update|error:not_in_room)$/,
  close_room: /^(room_closed(,room_update)?|error:(not_in_room|room_not_found|not_room_creator))$/,
  list_rooms: /^rooms$/,
  message: /^(message(,bot)?|error:not_in_room)$/,
  direct: /^(direct(,direct)?|error:user_offline)$/, // twice: a direct message to oneself
  broadcast: /^error:forbidden$/, // the fuzzed users are not superusers
  history: /^(history|error:(room_not_found|not_in_room))$/,
  presence: /^(presence|error:(room_not_found|not_in_room))$/,
  typing: /^(|error:not_in_room)$/,
};

// ---------------------------------------------------------------- the spec as an oracle

type Expected =
  | { kind: "close" }
  | { kind: "error"; code: "invalid_json" | "invalid_message" | "unknown_type"; type?: string }
  | { kind: "valid"; type: string };

const isInt = (v: unknown, min: number, max = Number.POSITIVE_INFINITY) =>
  typeof v === "number" && Number.isInteger(v) && v >= min && v <= max;
const roomOk = (v: unknown) => typeof v === "string" && ROOM.test(v);
const contentOk = (v: unknown) =>
  typeof v === "string" && v.trim().length >= 1 && v.trim().length <= 10000;
const optional = (cmd: Record<string, unknown>, key: string, ok: (v: unknown) => boolean) =>
  !(key in cmd) || ok(cmd[key]);

/** Whether a command of a known type has the fields the spec asks for. */
function fieldsOk(type: string, c: Record<string, unknown>): boolean {
  switch (type) {
    case "create_room":
      return roomOk(c.room_name);
    case "join_room": {
      const since = c.since;
      const sinceOk = (v: unknown) =>
        v !== null &&
        typeof v === "object" &&
        !Array.isArray(v) &&
        typeof (v as { epoch?: unknown }).epoch === "string" &&
        (v as { epoch: string }).epoch.length >= 1 &&
        (v as { epoch: string }).epoch.length <= 64 &&
        isInt((v as { seq?: unknown }).seq, 0);
      return (
        roomOk(c.room_name) &&
        (since === undefined || sinceOk(since)) &&
        optional(c, "presence", (v) => typeof v === "boolean")
      );
    }
    case "close_room":
    case "presence":
      return optional(c, "room_name", roomOk);
    case "message":
    case "broadcast":
      return contentOk(c.content);
    case "direct":
      return typeof c.user_id === "string" && UUID.test(c.user_id) && contentOk(c.content);
    case "history":
      return (
        optional(c, "room_name", roomOk) &&
        optional(c, "before", (v) => isInt(v, 1)) &&
        optional(c, "limit", (v) => isInt(v, 1, 100))
      );
    default:
      return true; // leave_room, list_rooms, typing: no fields
  }
}

/** What the spec says the answer to one frame is. */
function expected(frame: string | Uint8Array): Expected {
  const bytes = typeof frame === "string" ? Buffer.byteLength(frame) : frame.length;
  if (bytes > MAX_PAYLOAD) return { kind: "close" };
  if (typeof frame !== "string") return { kind: "error", code: "invalid_message" };
  let v: unknown;
  try {
    // The client sends lone surrogates as U+FFFD (UTF-8 cannot carry them).
    v = JSON.parse(frame.toWellFormed());
  } catch {
    return { kind: "error", code: "invalid_json" };
  }
  if (v === null || typeof v !== "object" || Array.isArray(v))
    return { kind: "error", code: "invalid_message" };
  const cmd = v as Record<string, unknown>;
  const type = cmd.type;
  if (typeof type !== "string" || !TYPE.test(type))
    return { kind: "error", code: "invalid_message" };
  if (!Object.hasOwn(ANSWERS, type)) return { kind: "error", code: "unknown_type", type };
  if (!fieldsOk(type, cmd)) return { kind: "error", code: "invalid_message" };
  return { kind: "valid", type };
}

// ---------------------------------------------------------------- generators

/** Room names of socket k's own rooms: only that socket joins them (`POOL` → `fzk_`). */
const POOL = ["POOLa", "POOLb", "POOLc"];
const SELF = "SELF-ID"; // replaced by the socket user's id (a direct message to oneself)
const loneSurrogate = fc.integer({ min: 0xd800, max: 0xdfff }).map((c) => String.fromCharCode(c));
const control = fc.integer({ min: 0, max: 0x1f }).map((c) => String.fromCharCode(c));
const nasty = fc.oneof(
  { weight: 4, arbitrary: fc.string({ unit: "binary", minLength: 1, maxLength: 1 }) },
  { weight: 1, arbitrary: loneSurrogate },
  { weight: 1, arbitrary: control },
  {
    weight: 1,
    arbitrary: fc.constantFrom("\u2028", "\ufeff", "\u200b", "\u00a0", "😀", "\\", '"'),
  },
);
const text = fc.oneof(
  { weight: 6, arbitrary: fc.string({ unit: nasty, maxLength: 40 }) },
  { weight: 1, arbitrary: fc.string({ unit: "grapheme-ascii", maxLength: 300 }) },
  {
    weight: 1,
    arbitrary: fc
      .tuple(fc.integer({ min: 9990, max: 10010 }), fc.constantFrom("x", "😀", " "))
      .map(([n, ch]) => ` ${ch.repeat(ch === "😀" ? n / 2 : n)} `),
  },
  { weight: 1, arbitrary: fc.constantFrom("", " ", "\t\n ", "halo", " HALO ", "nama", "xyz") },
);
const hugeNumber = fc.constantFrom(1e308, -1e308, 2 ** 53 + 1, 1.5, -0, 0, 1, 100, 101, -1);
const wrong = fc.oneof(
  fc.jsonValue({ maxDepth: 3 }),
  hugeNumber,
  fc.constant(null),
  fc.boolean(),
  fc.array(fc.string(), { maxLength: 3 }),
);
const anyRoom = fc.oneof(
  { weight: 3, arbitrary: fc.constantFrom(...POOL) },
  { weight: 2, arbitrary: fc.stringMatching(/^[a-zA-Z0-9_-]{1,100}$/) },
  { weight: 2, arbitrary: text },
  { weight: 1, arbitrary: wrong },
);
/** Joined rooms are the socket's own (others' rooms would deliver their messages here). */
const joinRoom = fc.oneof(
  { weight: 4, arbitrary: fc.constantFrom(...POOL) },
  { weight: 1, arbitrary: text.filter((t) => !ROOM.test(t)) },
  { weight: 1, arbitrary: wrong.filter((t) => !roomOk(t)) },
);
const userId = fc.oneof(
  fc.constant(SELF),
  fc.uuid(),
  text,
  wrong,
  fc.uuid().map((u) => u.toUpperCase()),
  fc.uuid().map((u) => ` ${u}`),
);
const content = fc.oneof({ weight: 3, arbitrary: text }, { weight: 1, arbitrary: wrong });
const maybe = <T>(a: fc.Arbitrary<T>) => fc.option(a, { nil: undefined });
const obj = (fields: Record<string, unknown>) =>
  Object.fromEntries(Object.entries(fields).filter(([, v]) => v !== undefined));

/** A command object of one of the known types, fields right or wrong. */
const command: fc.Arbitrary<Record<string, unknown>> = fc.oneof(
  anyRoom.map((room_name) => ({ type: "create_room", room_name })),
  fc
    .tuple(
      joinRoom,
      maybe(fc.oneof(fc.record({ epoch: fc.string(), seq: fc.oneof(fc.nat(), wrong) }), wrong)),
      maybe(fc.oneof(fc.boolean(), wrong)),
    )
    .map(([room_name, since, presence]) => obj({ type: "join_room", room_name, since, presence })),
  fc.constant({ type: "leave_room" }),
  maybe(anyRoom).map((room_name) => obj({ type: "close_room", room_name })),
  fc.constant({ type: "list_rooms" }),
  content.map((c) => ({ type: "message", content: c })),
  fc.tuple(userId, content).map(([user_id, c]) => ({ type: "direct", user_id, content: c })),
  content.map((c) => ({ type: "broadcast", content: c })),
  fc
    .tuple(
      maybe(anyRoom),
      maybe(fc.oneof(fc.integer(), wrong)),
      maybe(fc.oneof(fc.integer(), wrong)),
    )
    .map(([room_name, before, limit]) => obj({ type: "history", room_name, before, limit })),
  maybe(anyRoom).map((room_name) => obj({ type: "presence", room_name })),
  fc.constant({ type: "typing" }),
);

/** Extra fields (ignored by the spec), sometimes with the command's own names. */
const withExtras = fc
  .tuple(command, fc.dictionary(fc.string({ maxLength: 8 }), wrong, { maxKeys: 3 }))
  .map(([c, extra]) => ({ ...extra, ...c }));

/** Edits of a valid frame's text: characters removed, inserted or replaced. */
const mutated = fc
  .tuple(
    command.map((c) => JSON.stringify(c)),
    fc.array(fc.tuple(fc.nat(), fc.nat(2), nasty), { minLength: 1, maxLength: 4 }),
  )
  .map(([s, edits]) => {
    let out = s;
    for (const [at, op, ch] of edits) {
      const i = at % (out.length + 1);
      out =
        op === 0
          ? out.slice(0, i) + out.slice(i + 1)
          : op === 1
            ? out.slice(0, i) + ch + out.slice(i)
            : out.slice(0, i) + ch + out.slice(i + 1);
    }
    return out;
  });

const types = fc.oneof(
  fc.stringMatching(/^[a-z_]{1,12}$/),
  fc.constantFrom("constructor", "__proto__", "toString", "hasOwnProperty", "valueOf", "MESSAGE"),
  wrong,
);
const deep = fc
  .tuple(fc.integer({ min: 1, max: 30_000 }), fc.constantFrom("[", "{"))
  .map(([n, open]) =>
    open === "["
      ? `{"type":"list_rooms","x":${"[".repeat(n)}${"]".repeat(n)}}`
      : `{"type":"list_rooms","x":${'{"a":'.repeat(n)}1${"}".repeat(n)}}`,
  );
/** Frames of exactly the limit, one byte over, and far over. */
const sized = fc.constantFrom(-1, 0, 1, 5000).chain((over) =>
  fc.constantFrom('{"type":"message","content":"', '{"type":"list_rooms","pad":"').map((head) => {
    const body = `${head}${"y".repeat(MAX_PAYLOAD + over - head.length - 2)}"}`;
    return body;
  }),
);
const binary = fc.oneof(
  fc.uint8Array({ maxLength: 64 }),
  fc.constantFrom(
    new Uint8Array([0xc3, 0x28]),
    new Uint8Array([0xed, 0xa0, 0x80]), // an encoded surrogate: not UTF-8
    new Uint8Array([0xff, 0xfe, 0xfd]),
    new TextEncoder().encode('{"type":"list_rooms"}'),
  ),
  fc.constant(new Uint8Array(MAX_PAYLOAD + 1)),
);

const frameArb: fc.Arbitrary<string | Uint8Array> = fc.oneof(
  { weight: 6, arbitrary: withExtras.map((c) => JSON.stringify(c)) },
  { weight: 3, arbitrary: mutated },
  {
    weight: 2,
    arbitrary: fc
      .tuple(types, fc.dictionary(fc.string({ maxLength: 10 }), wrong, { maxKeys: 3 }))
      .map(([type, rest]) => JSON.stringify({ ...rest, type })),
  },
  { weight: 2, arbitrary: fc.json({ maxDepth: 3 }) },
  { weight: 1, arbitrary: fc.string({ unit: nasty, maxLength: 60 }) },
  { weight: 1, arbitrary: binary },
  { weight: 1, arbitrary: deep },
  {
    weight: 1,
    arbitrary: fc.constantFrom(
      '{"type":"history","limit":1e400}',
      '{"type":"history","before":-1e-400}',
      '{"type":"history","limit":100.0}',
      '{"type":"history","limit":123456789012345678901234567890}',
      '{"type":"join_room","room_name":"POOLa","since":{"epoch":"x","seq":-0}}',
      '{"type":"message","content":"\\u0000\\u0001\\u001f"}',
      '{"type":"message","content":"\\ud800"}',
      '{"type":"message","content":"\\udc00x\\ud83d"}',
      '{"type":"message","content":"a\u0000b"}',
      '{"type":"list_rooms","type":"dance"}',
      '{"type":"list_rooms"}\u0000',
      '\ufeff{"type":"list_rooms"}',
      '{"type":"list_rooms"} {"type":"list_rooms"}',
      "NaN",
      "-",
      "",
      " ",
    ),
  },
  { weight: 1, arbitrary: sized },
);

// ---------------------------------------------------------------- the fuzzing client

/** Frames by what the spec says they are (printed after the run). */
const tally = new Map<string, number>();
let sentinelSeq = 0;
/** `zzfuzz_` and letters: a type no handler has, so its answer is a known unknown_type. */
const sentinelType = () => {
  let n = ++sentinelSeq;
  let s = "";
  do {
    s += String.fromCharCode(97 + (n % 26));
    n = Math.floor(n / 26);
  } while (n > 0);
  return `zzfuzz_${s}`;
};

/** One fuzzed socket: a user of its own, JSON or text, reconnected after a 1009 close. */
class FuzzSock {
  client!: Client;
  sent = 0;
  constructor(
    readonly srv: TestServer,
    readonly user: TestUser,
    readonly fmt: "json" | "text",
    readonly k: number,
  ) {}

  async connect(): Promise<void> {
    this.client = await Client.connect(this.srv, this.user.token, this.fmt);
  }

  async reconnect(): Promise<void> {
    this.client.close();
    await this.client.waitClose().catch(() => {});
    await this.connect();
  }

  /** The frame as this socket sends it: its own room names and user id put in. */
  own(frame: string | Uint8Array): string | Uint8Array {
    if (typeof frame !== "string") return frame;
    return frame.replaceAll("POOL", `fz${this.k}_`).replaceAll(SELF, this.user.id);
  }

  /** The frames each answered with, in order (pipelined, each followed by a sentinel). */
  async run(given: Array<string | Uint8Array>): Promise<void> {
    const frames = given.map((f) => this.own(f));
    let i = 0;
    while (i < frames.length) {
      // Up to the next oversized frame: pipelined; an oversized one: alone, then reconnect.
      const chunk: Array<string | Uint8Array> = [];
      while (i < frames.length && expected(frames[i] as string).kind !== "close")
        chunk.push(frames[i++] as string);
      if (chunk.length > 0) await this.pipelined(chunk);
      if (i < frames.length) await this.oversized(frames[i++] as string | Uint8Array);
    }
  }

  private async pipelined(frames: Array<string | Uint8Array>): Promise<void> {
    const sentinels = frames.map(() => sentinelType());
    frames.forEach((f, j) => {
      this.client.ws.send(f);
      this.client.ws.send(`{"type":"${sentinels[j]}"}`);
    });
    this.sent += frames.length;
    for (let j = 0; j < frames.length; j++) {
      const answer: string[] = [];
      for (;;) {
        let got: string;
        try {
          got = await this.client.next(5000);
        } catch {
          throw new Error(
            `no answer (closed: ${this.client.ws.readyState === WebSocket.CLOSED}) to ${show(frames[j])}`,
          );
        }
        if (this.isSentinel(got, sentinels[j] as string)) break;
        answer.push(got);
      }
      const owed = deliveries(frames[j] as string | Uint8Array, this.user.id);
      this.check(frames[j] as string | Uint8Array, answer);
      if (owed > 0 && !isErrorAnswer(answer, this.fmt) && answer.length !== owed)
        throw new Error(
          `expected ${owed} frames (echo, bot reply or delivery): ${this.fmt} socket, frame ${show(frames[j])}, answer ${JSON.stringify(answer).slice(0, 400)}`,
        );
    }
  }

  private async oversized(frame: string | Uint8Array): Promise<void> {
    this.client.ws.send(frame);
    this.sent++;
    const closed = await this.client.waitClose(5000);
    expect({ frame: show(frame), code: closed.code }).toEqual({ frame: show(frame), code: 1009 });
    tally.set("close 1009", (tally.get("close 1009") ?? 0) + 1);
    await this.connect(); // a new socket of the same user works at once
  }

  private isSentinel(frame: string, type: string): boolean {
    const line = `[System] Unknown message type: '${type}'`;
    if (this.fmt === "text") return frame === line;
    return frame === JSON.stringify({ type: "error", code: "unknown_type", text: line });
  }

  /** The answer is what the spec says for this frame. */
  private check(frame: string | Uint8Array, answer: string[]): void {
    const want = expected(frame);
    const key = want.kind === "error" ? want.code : want.kind === "valid" ? want.type : "close";
    tally.set(key, (tally.get(key) ?? 0) + 1);
    const where = `${this.fmt} socket, frame ${show(frame)}, answer ${JSON.stringify(answer).slice(0, 400)}`;
    if (this.fmt === "json") {
      const events = answer.map((f) => {
        const ev = JSON.parse(f) as Record<string, unknown>;
        if (!Value.Check(ServerEvent, ev as unknown))
          throw new Error(`not a ServerEvent: ${where}`);
        const schema = Events[(ev as { type: keyof typeof Events }).type];
        if (!Value.Check(schema, ev)) throw new Error(`not a ${String(ev.type)} event: ${where}`);
        return ev;
      });
      if (want.kind === "error") {
        if (events.length !== 1 || events[0]?.type !== "error" || events[0].code !== want.code)
          throw new Error(`expected one ${want.code}: ${where}`);
        if (want.code === "unknown_type")
          expect(events[0].text).toBe(`[System] Unknown message type: '${want.type}'`);
        return;
      }
      if (want.kind !== "valid") throw new Error(`unexpected answer: ${where}`);
      const shape = events
        .map((e) => (e.type === "error" ? `error:${String(e.code)}` : e.type))
        .join(",");
      if (!(ANSWERS[want.type] as RegExp).test(shape))
        throw new Error(`${want.type} answered ${shape || "nothing"}: ${where}`);
      // The echo carries the content as sent, trimmed (lone surrogates arrive as U+FFFD).
      if (want.type === "message" || want.type === "direct") {
        const sent = JSON.parse((frame as string).toWellFormed()) as { content: string };
        const echo = events[0] as { type: string; content?: unknown };
        if (echo.type !== "error" && echo.content !== sent.content.trim())
          throw new Error(`${want.type} echo content differs: ${where}`);
      }
      return;
    }
    // text format: the same decision, read from the lines
    if (want.kind === "error") {
      const ok =
        answer.length === 1 &&
        (want.code === "invalid_json"
          ? answer[0] === "[System] Invalid JSON format. Please send valid JSON."
          : want.code === "unknown_type"
            ? answer[0] === `[System] Unknown message type: '${want.type}'`
            : /^\[System\] Invalid message: \S[^\n]*$/.test(answer[0] as string));
      if (!ok) throw new Error(`expected one ${want.code} line: ${where}`);
      return;
    }
    for (const line of answer)
      if (
        /^\[System\] (Invalid message|Invalid JSON|Unknown message type|Service temporarily)/.test(
          line,
        )
      )
        throw new Error(
          `a well-formed ${want.kind === "valid" ? want.type : ""} got an error line: ${where}`,
        );
  }
}

/** The bot replies (spec, "Bot"): to `halo`, to anything with `nama`, or with a vowel. */
const botReplies = (content: string) => {
  const c = content.trim().toLowerCase();
  return c === "halo" || c.includes("nama") || /[aiueo]/.test(c);
};

/**
 * How many frames a well-formed `message` or `direct` brings its sender when accepted: the echo,
 * plus the bot's reply or (to oneself) the delivery. 0 for every other frame.
 */
function deliveries(frame: string | Uint8Array, self: string): number {
  const want = expected(frame);
  if (want.kind !== "valid" || (want.type !== "message" && want.type !== "direct")) return 0;
  const cmd = JSON.parse((frame as string).toWellFormed()) as { content: string; user_id?: string };
  if (want.type === "message") return botReplies(cmd.content) ? 2 : 1;
  return cmd.user_id?.toLowerCase() === self ? 2 : 1;
}

/** An answer that is one error (a JSON error event, or a `[System]` line that is not an echo). */
function isErrorAnswer(answer: string[], fmt: "json" | "text"): boolean {
  if (answer.length !== 1) return false;
  const a = answer[0] as string;
  return fmt === "json"
    ? (JSON.parse(a) as { type: string }).type === "error"
    : a.startsWith("[System] ");
}

function show(frame: string | Uint8Array | undefined): string {
  if (frame === undefined) return "undefined";
  if (typeof frame !== "string")
    return `binary(${frame.length}) ${Buffer.from(frame.slice(0, 16)).toString("hex")}`;
  return frame.length > 200
    ? `${JSON.stringify(frame.slice(0, 120))}… (${frame.length} chars)`
    : JSON.stringify(frame);
}

/** Runs fc.assert; on failure prints how to replay, then fails. */
/** The message of the first failing run of the current property. */
let firstFailure: string | undefined;

async function assertWithSeed(
  name: string,
  property: fc.IAsyncProperty<[Array<string | Uint8Array>]>,
  numRuns: number,
) {
  console.log(`${name}: FUZZ_SEED=${SEED}, ${numRuns} runs`);
  firstFailure = undefined;
  const details = await fc.check(property, { seed: SEED, numRuns, endOnFailure: false });
  const first = firstFailure as string | undefined; // set by the property, which TS cannot see
  if (details.failed && first !== undefined)
    console.error(`${name}: first failure (run ${details.numRuns}): ${first.slice(0, 3000)}`);
  if (details.failed) {
    const why =
      details.errorInstance instanceof Error
        ? details.errorInstance.message
        : String(details.errorInstance);
    const frames = (details.counterexample?.[0] ?? []).map(show);
    console.error(
      `${name} FAILED — replay with FUZZ_SEED=${SEED} FUZZ_RUNS=${numRuns}; after ${details.numRuns} runs, ${details.numShrinks} shrinks\n` +
        `${why.slice(0, 2000)}\ncounterexample (${frames.length} frames, spread over the sockets in turn):\n  ${frames.join("\n  ")}`,
    );
    throw new Error(`${name}: property failed (FUZZ_SEED=${SEED}); see the report above`);
  }
}

// ---------------------------------------------------------------- the properties

/** The main property against a server started with `env` (one node, or a node of a cluster). */
function fuzzServer(name: string, runs: number, env: () => Record<string, string>): void {
  describe(name, () => {
    let srv: TestServer;
    let socks: FuzzSock[];
    let alice: TestUser;
    let bob: TestUser;
    beforeAll(async () => {
      srv = await startServer({
        ...env(),
        RATE_LIMIT_CAPACITY: "10000000",
        RATE_LIMIT_REFILL_PER_SECOND: "1000000",
        WS_MAX_PAYLOAD_BYTES: String(MAX_PAYLOAD),
        BOT_ENABLED: "true",
        LOG_LEVEL: "info",
        // Each oversized frame costs a reconnect, and each shrink step after a failure four.
        CONNECT_RATE_PER_IP: "0",
      });
      const users = await Promise.all(Array.from({ length: SOCKETS + 2 }, () => createUser(srv)));
      [alice, bob] = users.slice(SOCKETS) as [TestUser, TestUser];
      socks = users
        .slice(0, SOCKETS)
        .map((u, k) => new FuzzSock(srv, u, k === SOCKETS - 1 ? "text" : "json", k));
      await Promise.all(socks.map((s) => s.connect()));
    });
    afterAll(() => srv.stop());

    test(`${runs * BATCH} frames: the contract's answer each, socket usable, others unaffected`, async () => {
      // Two other users chat in their own room the whole time.
      const a = await Client.connect(srv, alice.token);
      const b = await Client.connect(srv, bob.token);
      for (const c of [a, b]) {
        c.send({ type: "create_room", room_name: `obs_${c === a ? "a" : "b"}` });
        await c.next();
      }
      a.send({ type: "join_room", room_name: "obs_a" });
      b.send({ type: "join_room", room_name: "obs_a" });
      await a.take(2);
      await b.take(2); // room_joined, room_update (and no presence event: not asked for)
      await a.stray();
      let chatting = true;
      let said = 0;
      const chat = (async () => {
        while (chatting && said < 2000) {
          a.send({ type: "message", content: `m${++said} xyz` });
          await Bun.sleep(10);
        }
      })();

      const t0 = performance.now();
      tally.clear();
      let dirty = false;
      const property = fc.asyncProperty(
        fc.array(frameArb, { minLength: BATCH, maxLength: BATCH }),
        async (frames) => {
          // A failed run leaves answers unread: start the next one (a shrink) on fresh sockets.
          if (dirty) await Promise.all(socks.map((s) => s.reconnect()));
          dirty = true;
          try {
            await Promise.all(
              socks.map((s, k) => s.run(frames.filter((_, j) => j % SOCKETS === k))),
            );
          } catch (e) {
            // The first failure is the one that matters (shrinks run on a server in another state).
            firstFailure ??= e instanceof Error ? e.message : String(e);
            throw e;
          }
          dirty = false;
        },
      );
      await assertWithSeed(name, property, runs);
      chatting = false;
      await chat;
      const seconds = (performance.now() - t0) / 1000;
      const sent = socks.reduce((n, s) => n + s.sent, 0);
      console.log(
        `${name}: ${sent} frames in ${seconds.toFixed(1)} s; observers: ${said} messages`,
      );
      console.log(`${name}: ${JSON.stringify(Object.fromEntries([...tally].sort()))}`);
      expect(sent).toBeGreaterThanOrEqual(runs * BATCH);

      // Alice got her echoes, Bob every message, in order, and nothing else.
      const echoes = (await a.take(said, 5000)).map(
        (f) => JSON.parse(f) as Record<string, unknown>,
      );
      const got = (await b.take(said, 5000)).map((f) => JSON.parse(f) as Record<string, unknown>);
      const want = Array.from({ length: said }, (_, i) => `m${i + 1} xyz`);
      expect(echoes.map((e) => e.content)).toEqual(want);
      expect(got.map((e) => e.content)).toEqual(want);
      expect(await a.stray()).toEqual([]);
      expect(await b.stray()).toEqual([]);
      // The server is alive, logged no error, and every fuzzed socket still answers.
      expect((await fetch(`${srv.api}/ws/health`)).status).toBe(200);
      for (const s of socks) await s.run(['{"type":"list_rooms"}']);
      const errors = srv.logs.filter((l) => (JSON.parse(l) as { level: string }).level === "error");
      expect(errors).toEqual([]);
    });
  });
}

fuzzServer("ws fuzz, one node", RUNS, () => ({}));

// The same against a node in cluster mode: rooms, rate limit and deliveries go through Redis.
describe.skipIf(!redisAvailable())("cluster mode", () => {
  let redis: RedisServer;
  beforeAll(async () => {
    redis = await startRedis();
  });
  afterAll(() => redis.stop());
  fuzzServer("ws fuzz, a cluster node (Redis)", CLUSTER_RUNS, () => ({ REDIS_URL: redis.url }));
});

describe("fuzzed frames against an empty rate-limit bucket", () => {
  let srv: TestServer;
  let user: TestUser;
  beforeAll(async () => {
    srv = await startServer({
      RATE_LIMIT_CAPACITY: "1",
      RATE_LIMIT_REFILL_PER_SECOND: "0.0001",
      BOT_ENABLED: "false",
    });
    user = await createUser(srv);
  });
  afterAll(() => srv.stop());

  test("every frame gets exactly one rate_limited (or 1009 when oversized), nothing else", async () => {
    let client = await Client.connect(srv, user.token);
    client.send({ type: "list_rooms" }); // the one token
    expect(JSON.parse(await client.next()).type).toBe("rooms");
    let frames = 0;
    const property = fc.asyncProperty(
      fc.array(frameArb, { minLength: BATCH, maxLength: BATCH }),
      async (batch) => {
        const small = batch.filter((f) => expected(f).kind !== "close");
        for (const f of small) client.ws.send(f);
        frames += small.length;
        for (const f of small) {
          const ev = JSON.parse(await client.next(5000)) as Record<string, unknown>;
          if (ev.type !== "error" || ev.code !== "rate_limited")
            throw new Error(`frame ${show(f)} got ${JSON.stringify(ev)}`);
          expect(ev.text).toMatch(/^\[System\] Rate limit exceeded\. Try again in [1-9]\d*s\.$/);
        }
        expect(await client.stray({ ping: true })).toEqual([]);
        const big = batch.find((f) => expected(f).kind === "close");
        if (big !== undefined) {
          client.ws.send(big);
          frames++;
          expect((await client.waitClose()).code).toBe(1009);
          client = await Client.connect(srv, user.token);
        }
      },
    );
    await assertWithSeed("rate-limited fuzz", property, 20);
    expect(frames).toBeGreaterThanOrEqual(900);
  });
});
