// The wire protocol in one place: client command schemas, server event schemas, and the
// text line of every event. Both formats render from the same builders, so they cannot drift.
import { type Static, type TSchema, Type } from "@sinclair/typebox";

export type Format = "json" | "text";
export const FORMATS: readonly Format[] = ["json", "text"];

// ---------------------------------------------------------------- client → server

export const TYPE_PATTERN = /^[a-z_]+$/;
export const ROOM_NAME_PATTERN = "^[a-zA-Z0-9_-]{1,100}$";
export const CONTENT_MAX = 10000;
const UUID_PATTERN =
  "^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$";

export const RoomName = Type.String({ pattern: ROOM_NAME_PATTERN });
/** Checked as a string here; trimmed and length-checked by `normalizeContent`. */
export const Content = Type.String();
export const UserId = Type.String({ pattern: UUID_PATTERN });

/** Where a client stopped reading a room: the epoch and the last seq it saw. */
export const Since = Type.Object({
  epoch: Type.String({ minLength: 1, maxLength: 64 }),
  seq: Type.Integer({ minimum: 0 }),
});
export const HISTORY_LIMIT_MAX = 100;
export const HISTORY_LIMIT_DEFAULT = 50;

export const Commands = {
  create_room: Type.Object({ room_name: RoomName }),
  join_room: Type.Object({
    room_name: RoomName,
    /** Recovery: replay what was missed since this position (version 1.1). */
    since: Type.Optional(Since),
    /** Get presence_join / presence_leave / typing for this room (version 1.1). */
    presence: Type.Optional(Type.Boolean()),
  }),
  leave_room: Type.Object({}),
  close_room: Type.Object({ room_name: Type.Optional(RoomName) }),
  list_rooms: Type.Object({}),
  message: Type.Object({ content: Content }),
  direct: Type.Object({ user_id: UserId, content: Content }),
  broadcast: Type.Object({ content: Content }),
  history: Type.Object({
    room_name: Type.Optional(RoomName),
    before: Type.Optional(Type.Integer({ minimum: 1 })),
    limit: Type.Optional(Type.Integer({ minimum: 1, maximum: HISTORY_LIMIT_MAX })),
  }),
  presence: Type.Object({ room_name: Type.Optional(RoomName) }),
  typing: Type.Object({}),
} satisfies Record<string, TSchema>;

export type CommandName = keyof typeof Commands;
export type Command<N extends CommandName> = Static<(typeof Commands)[N]>;

/** Why a field failed, in words a client can act on (never the schema itself). */
export const FIELD_RULES: Record<string, string> = {
  room_name: "room_name must be 1-100 characters of letters, digits, '_' or '-'",
  content: `content must be a string of 1-${CONTENT_MAX} characters`,
  user_id: "user_id must be a UUID",
  since: "since must be an object {epoch: string, seq: integer >= 0}",
  presence: "presence must be true or false",
  before: "before must be an integer >= 1",
  limit: `limit must be an integer from 1 to ${HISTORY_LIMIT_MAX}`,
};

/** Trims `content` in place; returns an error reason or undefined. */
export function normalizeContent(cmd: { content?: unknown }): string | undefined {
  if (typeof cmd.content !== "string") return undefined;
  const trimmed = cmd.content.trim();
  if (trimmed.length === 0 || trimmed.length > CONTENT_MAX) return FIELD_RULES.content;
  cmd.content = trimmed;
  return undefined;
}

// ---------------------------------------------------------------- server → client

/** Every error code a server `error` event can carry (the API documents list them from here). */
export const ERROR_CODES = [
  "invalid_json",
  "invalid_message",
  "unknown_type",
  "room_not_found",
  "room_exists",
  "already_in_room",
  "not_in_room",
  "not_room_creator",
  "user_offline",
  "forbidden",
  "rate_limited",
  "limit_reached",
  "unavailable",
] as const;
export type ErrorCode = (typeof ERROR_CODES)[number];
export const ErrorCode = Type.Union(ERROR_CODES.map((c) => Type.Literal(c)));

const Time = Type.String({ format: "date-time" });
const RoomOrNull = Type.Union([Type.String(), Type.Null()]);
export const RoomSummary = Type.Object({
  name: Type.String(),
  creator: Type.String(),
  members: Type.Integer(),
  created_at: Time,
});
export type RoomSummary = Static<typeof RoomSummary>;

const MessageFields = {
  id: Type.String(),
  room: Type.String(),
  from: Type.String(),
  content: Type.String(),
  sent_at: Time,
  /** Version 1.1: the message's place in the room's stream. */
  seq: Type.Integer({ minimum: 1 }),
  epoch: Type.String(),
};

const ev = <T extends string, P extends Record<string, TSchema>>(type: T, props: P) =>
  Type.Object({ type: Type.Literal(type), ...props });
const Text = Type.String();

/** JSON schemas of every server event: what a typed client can rely on. */
export const Events = {
  welcome: ev("welcome", { user_id: Type.String(), text: Text }),
  room_created: ev("room_created", { room: Type.String(), text: Text }),
  room_joined: ev("room_joined", {
    room: Type.String(),
    members: Type.Integer(),
    /** The room's epoch and latest seq (0 when none yet). */
    epoch: Type.String(),
    seq: Type.Integer(),
    /** Only when the join asked for recovery (`since`). */
    recovered: Type.Optional(Type.Boolean()),
    text: Text,
  }),
  room_left: ev("room_left", { room: Type.String(), text: Text }),
  room_closed: ev("room_closed", { room: Type.String(), by: Type.String(), text: Text }),
  room_update: ev("room_update", { room: RoomOrNull, text: Text }),
  rooms: ev("rooms", { rooms: Type.Array(RoomSummary), text: Text }),
  message: ev("message", MessageFields),
  direct: ev("direct", {
    id: Type.String(),
    from: Type.String(),
    to: Type.String(),
    content: Type.String(),
    sent_at: Time,
  }),
  broadcast: ev("broadcast", {
    id: Type.String(),
    from: Type.String(),
    content: Type.String(),
    sent_at: Time,
  }),
  bot: ev("bot", { content: Type.String(), text: Text }),
  error: ev("error", { code: ErrorCode, text: Text }),
  history: ev("history", {
    room: Type.String(),
    epoch: Type.String(),
    messages: Type.Array(Type.Object(MessageFields)),
    text: Text,
  }),
  presence: ev("presence", {
    room: Type.String(),
    users: Type.Array(Type.Object({ user_id: Type.String(), connections: Type.Integer() })),
    text: Text,
  }),
  presence_join: ev("presence_join", { room: Type.String(), user_id: Type.String(), text: Text }),
  presence_leave: ev("presence_leave", { room: Type.String(), user_id: Type.String(), text: Text }),
  /** JSON only: text-format sockets never get it. */
  typing: ev("typing", { room: Type.String(), user_id: Type.String() }),
};
export const ServerEvent = Type.Union(Object.values(Events));
export type ServerEvent = Static<typeof ServerEvent>;

/** One event rendered once per format: what goes on the wire. */
export interface Rendered {
  json: string;
  text: string;
}

/** Serialises once per format; `event` already carries its `text` (no copy of the object). */
const render = <E extends { type: string; text: string }>(event: E): Rendered => ({
  json: JSON.stringify(event),
  text: event.text,
});

/** `YYYY-MM-DD HH:MM:SS` UTC, as the seed prints `Created:`. */
export const textTime = (ms: number): string =>
  new Date(ms).toISOString().slice(0, 19).replace("T", " ");
export const isoTime = (ms: number): string => new Date(ms).toISOString();

const SYS = "[System]";

export const events = {
  welcome: (userId: string) =>
    render({
      type: "welcome",
      user_id: userId,
      text: `${SYS} Welcome, ${userId}! Send {"type": "list_rooms"} to see the rooms.`,
    }),
  roomCreated: (room: string) =>
    render({ type: "room_created", room, text: `${SYS} Room '${room}' created successfully!` }),
  roomJoined: (
    room: string,
    members: number,
    at: { epoch: string; seq: number },
    recovered?: boolean,
  ) =>
    render({
      type: "room_joined",
      room,
      members,
      epoch: at.epoch,
      seq: at.seq,
      ...(recovered === undefined ? {} : { recovered }),
      text: `${SYS} Joined room '${room}' successfully!`,
    }),
  roomLeft: (room: string) =>
    render({ type: "room_left", room, text: `${SYS} Left room '${room}' successfully!` }),
  roomClosedToCloser: (room: string, by: string) =>
    render({ type: "room_closed", room, by, text: `${SYS} Room '${room}' closed successfully!` }),
  roomClosedToMembers: (room: string, by: string) =>
    render({
      type: "room_closed",
      room,
      by,
      text: `${SYS} Room '${room}' was closed by its creator.`,
    }),
  roomUpdate: (room: string | null) =>
    render({ type: "room_update", room, text: `ROOM_UPDATE:${room ?? "None"}` }),
  rooms: (rooms: RoomSummary[]) =>
    render({
      type: "rooms",
      rooms,
      text:
        rooms.length === 0
          ? `${SYS} No active rooms.`
          : [
              `${SYS} Active Rooms:`,
              ...rooms.map(
                (r) =>
                  `  - ${r.name} (Creator: ${r.creator}, Members: ${r.members}, Created: ${textTime(Date.parse(r.created_at))})`,
              ),
            ].join("\n"),
    }),
  bot: (content: string) => render({ type: "bot", content, text: `Bot: ${content}` }),
  error: (code: ErrorCode, text: string) => render({ type: "error", code, text }),
  history: (room: string, epoch: string, messages: readonly ChatMessage[]) =>
    render({
      type: "history",
      room,
      epoch,
      messages: messages.map(messageObject),
      text: [
        `${SYS} History of '${room}': ${messages.length} messages`,
        ...messages.map(messageFrames.others),
      ].join("\n"),
    }),
  presence: (room: string, users: ReadonlyArray<{ user_id: string; connections: number }>) =>
    render({
      type: "presence",
      room,
      users,
      text: [
        `${SYS} Online in '${room}': ${users.length} users`,
        ...users.map((u) => `  - ${u.user_id}`),
      ].join("\n"),
    }),
  presenceJoin: (room: string, userId: string) =>
    render({
      type: "presence_join",
      room,
      user_id: userId,
      text: `${SYS} User ${userId} joined '${room}'`,
    }),
  presenceLeave: (room: string, userId: string) =>
    render({
      type: "presence_leave",
      room,
      user_id: userId,
      text: `${SYS} User ${userId} left '${room}'`,
    }),
  /** JSON only (no text line: text-format sockets never get it). */
  typing: (room: string, userId: string): string =>
    JSON.stringify({ type: "typing", room, user_id: userId }),
};

export interface ChatMessage {
  id: string;
  room: string;
  from: string;
  content: string;
  sent_at: string;
  /** Version 1.1: set once the room's stream gave the message its place. */
  seq?: number;
  epoch?: string;
}

/** A message as it stands in `message` events and `history` lists (fields in wire order). */
const messageObject = (m: ChatMessage) => ({
  id: m.id,
  room: m.room,
  from: m.from,
  content: m.content,
  sent_at: m.sent_at,
  seq: m.seq,
  epoch: m.epoch,
});
/**
 * A room message: one JSON frame for everyone, two text lines (sender, others). Each rendering is
 * built only when some socket will receive it.
 */
export const messageFrames = {
  json: (m: ChatMessage): string =>
    JSON.stringify({
      type: "message",
      id: m.id,
      room: m.room,
      from: m.from,
      content: m.content,
      sent_at: m.sent_at,
      seq: m.seq,
      epoch: m.epoch,
    }),
  self: (m: ChatMessage): string => `You wrote: ${m.content}`,
  others: (m: ChatMessage): string => `User ${m.from} says: ${m.content}`,
};

export interface DirectMessage {
  id: string;
  from: string;
  to: string;
  content: string;
  sent_at: string;
}
export function renderDirect(m: DirectMessage): {
  json: string;
  recipient: string;
  sender: string;
} {
  return {
    json: JSON.stringify({ type: "direct", ...m }),
    recipient: `[Private] User ${m.from} says: ${m.content}`,
    sender: `You wrote to ${m.to}: ${m.content}`,
  };
}

export interface BroadcastMessage {
  id: string;
  from: string;
  content: string;
  sent_at: string;
}
export function renderBroadcast(m: BroadcastMessage): Rendered {
  return { json: JSON.stringify({ type: "broadcast", ...m }), text: `[Broadcast] ${m.content}` };
}

// ---------------------------------------------------------------- errors

export const errors = {
  invalidJson: () =>
    events.error("invalid_json", `${SYS} Invalid JSON format. Please send valid JSON.`),
  invalidMessage: (reason: string) =>
    events.error("invalid_message", `${SYS} Invalid message: ${reason}`),
  unknownType: (type: string) =>
    events.error("unknown_type", `${SYS} Unknown message type: '${type}'`),
  roomNotFound: (room: string) =>
    events.error("room_not_found", `${SYS} Room '${room}' does not exist!`),
  roomExists: (room: string) =>
    events.error("room_exists", `${SYS} Room '${room}' already exists!`),
  alreadyInRoom: (room: string) =>
    events.error("already_in_room", `${SYS} You are already in room '${room}'!`),
  notInRoomToSend: () =>
    events.error("not_in_room", `${SYS} You need to join a room first to send messages!`),
  notInRoom: () => events.error("not_in_room", `${SYS} You are not in any room!`),
  notRoomCreator: (room: string) =>
    events.error("not_room_creator", `${SYS} Only the room creator can close room '${room}'!`),
  userOffline: (userId: string) =>
    events.error("user_offline", `${SYS} User '${userId}' is not online!`),
  forbidden: () => events.error("forbidden", `${SYS} You are not allowed to do that.`),
  rateLimited: (seconds: number) =>
    events.error("rate_limited", `${SYS} Rate limit exceeded. Try again in ${seconds}s.`),
  limitReached: (what: string) => events.error("limit_reached", `${SYS} ${what} limit reached.`),
  unavailable: () =>
    events.error("unavailable", `${SYS} Service temporarily unavailable. Try again.`),
};
