// A protocol-aware test client shared by the command test files: every JSON frame it reads is
// checked against the TypeBox `ServerEvent` / `Events` schemas, and expectations are written
// once for both formats (JSON fields, or the exact text line).
import { expect } from "bun:test";
import { FormatRegistry } from "@sinclair/typebox";
import { Value } from "@sinclair/typebox/value";
import { Events, ServerEvent } from "../src/protocol.ts";
import { Client, type TestServer, type TestUser } from "./helpers.ts";

export type Fmt = "json" | "text";
export const FMTS: Fmt[] = ["json", "text"];
export const other = (fmt: Fmt): Fmt => (fmt === "json" ? "text" : "json");
export type Ev = Record<string, unknown>;

export const ISO_UTC = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$/;
if (!FormatRegistry.Has("date-time")) FormatRegistry.Set("date-time", (v) => ISO_UTC.test(v));
/** Events that carry no `text` field in JSON. */
export const UNTEXTED = new Set(["message", "direct", "broadcast", "typing"]);

/** Parses one JSON frame and checks it against `ServerEvent` and its own `Events` schema. */
export function parseEvent(frame: string): Ev {
  let value: unknown;
  try {
    value = JSON.parse(frame);
  } catch {
    throw new Error(`JSON socket got a non-JSON frame: ${frame}`);
  }
  if (!Value.Check(ServerEvent, value)) {
    const why = [...Value.Errors(ServerEvent, value)].slice(0, 3).map((e) => e.message);
    throw new Error(`frame is not a ServerEvent: ${frame} (${why.join("; ")})`);
  }
  const ev = value as Ev;
  const schema = Events[ev.type as keyof typeof Events];
  expect(schema).toBeDefined();
  expect(Value.Check(schema, ev)).toBe(true);
  if ("sent_at" in ev) expect(ev.sent_at).toMatch(ISO_UTC);
  if (ev.type === "rooms") for (const r of ev.rooms as Ev[]) expect(r.created_at).toMatch(ISO_UTC);
  if (!UNTEXTED.has(ev.type as string)) expect(typeof ev.text).toBe("string");
  return ev;
}

export const line = {
  created: (r: string) => `[System] Room '${r}' created successfully!`,
  joined: (r: string) => `[System] Joined room '${r}' successfully!`,
  left: (r: string) => `[System] Left room '${r}' successfully!`,
  closedToCloser: (r: string) => `[System] Room '${r}' closed successfully!`,
  closedToMembers: (r: string) => `[System] Room '${r}' was closed by its creator.`,
  update: (r: string | null) => `ROOM_UPDATE:${r ?? "None"}`,
  roomNotFound: (r: string) => `[System] Room '${r}' does not exist!`,
  roomExists: (r: string) => `[System] Room '${r}' already exists!`,
  alreadyInRoom: (r: string) => `[System] You are already in room '${r}'!`,
  notInRoomToSend: "[System] You need to join a room first to send messages!",
  notInRoom: "[System] You are not in any room!",
  notRoomCreator: (r: string) => `[System] Only the room creator can close room '${r}'!`,
  userOffline: (u: string) => `[System] User '${u}' is not online!`,
  forbidden: "[System] You are not allowed to do that.",
};

/** Sockets opened by the current test; closed after it. */
const opened: Sock[] = [];

/** A connected socket of one user in one format; every JSON frame it reads is schema-checked. */
export class Sock {
  private constructor(
    readonly client: Client,
    readonly fmt: Fmt,
    readonly user: TestUser,
  ) {}

  /** Connects and checks the welcome frame. */
  static async connect(srv: TestServer, user: TestUser, fmt: Fmt): Promise<Sock> {
    const url = `${srv.ws}?token=${encodeURIComponent(user.token)}&format=${fmt}`;
    const sock = new Sock(await Client.open(url), fmt, user);
    opened.push(sock);
    const welcome = new RegExp(`^\\[System\\] Welcome, ${user.id}![^\\n]*$`);
    const frame = await sock.client.next();
    if (fmt === "text") expect(frame).toMatch(welcome);
    else {
      const ev = parseEvent(frame);
      expect(ev).toEqual({
        type: "welcome",
        user_id: user.id,
        text: expect.stringMatching(welcome),
      });
    }
    return sock;
  }

  get id(): string {
    return this.user.id;
  }

  send(frame: unknown): void {
    this.client.send(frame);
  }

  /** The next raw frame (schema-checked when JSON). */
  async frame(): Promise<string> {
    const frame = await this.client.next();
    if (this.fmt === "json") parseEvent(frame);
    return frame;
  }

  /** The next JSON event (JSON sockets only). */
  async event(): Promise<Ev> {
    expect(this.fmt).toBe("json");
    return parseEvent(await this.client.next());
  }

  /**
   * Expects the next frame to be this event: in JSON exactly `fields` (plus `text` = `text` for
   * events that carry one), in text format exactly the line `text`.
   */
  async expect(fields: Ev, text: string): Promise<Ev | undefined> {
    const frame = await this.client.next();
    if (this.fmt === "text") {
      expect(frame).toBe(text);
      return undefined;
    }
    const ev = parseEvent(frame);
    expect(ev).toEqual(UNTEXTED.has(fields.type as string) ? fields : { ...fields, text });
    return ev;
  }

  expectError(code: string, text: string): Promise<Ev | undefined> {
    return this.expect({ type: "error", code }, text);
  }

  expectCreated(room: string) {
    return this.expect({ type: "room_created", room }, line.created(room));
  }

  expectJoined(room: string, members: number) {
    return this.expect(
      { type: "room_joined", room, members, epoch: expect.any(String), seq: expect.any(Number) },
      line.joined(room),
    );
  }

  expectLeft(room: string) {
    return this.expect({ type: "room_left", room }, line.left(room));
  }

  expectUpdate(room: string | null) {
    return this.expect({ type: "room_update", room }, line.update(room));
  }

  expectClosed(room: string, by: string, toCloser: boolean) {
    const text = toCloser ? line.closedToCloser(room) : line.closedToMembers(room);
    return this.expect({ type: "room_closed", room, by }, text);
  }

  /** A room message as `to` receives it (`self`: the sender's echo). */
  expectMessage(room: string, from: string, content: string, self: boolean) {
    return this.expect(
      {
        type: "message",
        id: expect.any(String),
        room,
        from,
        content,
        sent_at: expect.stringMatching(ISO_UTC),
        seq: expect.any(Number),
        epoch: expect.any(String),
      },
      self ? `You wrote: ${content}` : `User ${from} says: ${content}`,
    );
  }

  async create(room: string): Promise<void> {
    this.send({ type: "create_room", room_name: room });
    await this.expectCreated(room);
  }

  async join(room: string, members: number): Promise<void> {
    this.send({ type: "join_room", room_name: room });
    await this.expectJoined(room, members);
    await this.expectUpdate(room);
  }

  /**
   * Asserts that nothing else is on its way to this socket: the answer to a sentinel sent now
   * is the next frame (`Client.stray`). Call it once the action under test has been answered.
   */
  async quiet(): Promise<void> {
    expect(await this.client.stray()).toEqual([]);
  }

  close(): void {
    this.client.close();
  }
}

let roomSeq = 0;
/** A room name no other test uses. */
export const fresh = (prefix = "room") => `${prefix}-${++roomSeq}-${Date.now().toString(36)}`;

/** The `rooms` list, asked on a JSON socket. */
export async function listRooms(sock: Sock): Promise<Ev[]> {
  sock.send({ type: "list_rooms" });
  const ev = await sock.event();
  expect(ev.type).toBe("rooms");
  return ev.rooms as Ev[];
}

export async function roomInfo(sock: Sock, room: string): Promise<Ev | undefined> {
  return (await listRooms(sock)).find((r) => r.name === room);
}

/**
 * `Sock.quiet()` for several sockets at once. A frame the server sends to socket B because of
 * socket A's action comes before B's sentinel answer when the server sent it before reading B's
 * sentinel, so call this once A's action has been answered.
 */
export async function quietAll(socks: Sock[]): Promise<void> {
  const strays = await Promise.all(socks.map((s) => s.client.stray()));
  expect(strays).toEqual(socks.map(() => []));
}

export const ENV = {
  BOT_ENABLED: "false",
  RATE_LIMIT_CAPACITY: "100000",
  MAX_ROOMS_PER_USER: "100000",
  MAX_CONNECTIONS_PER_USER: "1000",
};

/** Closes every socket opened since the last call (use in afterEach). */
export function closeOpened(): void {
  for (const s of opened.splice(0)) s.close();
}
