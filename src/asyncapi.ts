// The AsyncAPI 3.0 document of the WebSocket protocol, built from what the server runs: the
// payload of every command is the TypeBox schema its handler validates with (the handler
// registry, so an added command appears by itself), the events are `Events` of protocol.ts, the
// error codes `ERROR_CODES`, and every example is rendered by the protocol's own builders.
// Served at GET /api/v1/asyncapi.json (src/rest/api-docs.ts); test/api-docs.test.ts parses it.
import type { TSchema } from "@sinclair/typebox";
import {
  CONTENT_MAX,
  type CommandName,
  ERROR_CODES,
  type ErrorCode,
  Events,
  errors,
  events,
  FIELD_RULES,
  HISTORY_LIMIT_DEFAULT,
  HISTORY_LIMIT_MAX,
  messageFrames,
  type Rendered,
  renderBroadcast,
  renderDirect,
} from "./protocol.ts";
import type { Handlers } from "./ws/handler.ts";

type Json = Record<string, unknown>;
type EventName = keyof typeof Events;

/** A TypeBox schema as plain JSON Schema (TypeBox's symbol keys dropped). */
const plain = (schema: TSchema): Json => JSON.parse(JSON.stringify(schema)) as Json;

const USER_A = "6f1c2a4e-9b7d-4c3e-8a21-3f5b9d0e7c11";
const USER_B = "0b8e4d2f-1a6c-4f9e-b3d7-5c2a8e1f4d60";
const AT = "2026-01-02T03:04:05.000Z";
const EPOCH = "k3x9q1";
const SAMPLE = {
  id: "m1",
  room: "general",
  from: USER_A,
  content: "Hello everyone!",
  sent_at: AT,
  seq: 7,
  epoch: EPOCH,
};

interface CommandDoc {
  summary: string;
  example: Json;
  /** Events that answer the command on the sender's socket (besides `error`). */
  answers: EventName[];
}

/** What each command does. Typed over `Commands`: a command added there must be described here. */
const COMMAND_DOCS: Record<CommandName, CommandDoc> = {
  create_room: {
    summary: "Create a room (does not join it). The creator alone may close it.",
    example: { type: "create_room", room_name: "general" },
    answers: ["room_created"],
  },
  join_room: {
    summary:
      "Join a room, leaving the current one. `since` asks for recovery (replay of what was missed " +
      "after that position, 1.1); `presence: true` subscribes to presence_join, presence_leave " +
      "and typing for the room (1.1).",
    example: {
      type: "join_room",
      room_name: "general",
      since: { epoch: EPOCH, seq: 5 },
      presence: true,
    },
    answers: ["room_left", "room_joined", "room_update", "message"],
  },
  leave_room: {
    summary: "Leave the current room.",
    example: { type: "leave_room" },
    answers: ["room_left", "room_update"],
  },
  close_room: {
    summary:
      "Close the current room, or `room_name` (a room you created): every member is moved out.",
    example: { type: "close_room", room_name: "general" },
    answers: ["room_closed", "room_update"],
  },
  list_rooms: {
    summary: "List the rooms, oldest first.",
    example: { type: "list_rooms" },
    answers: ["rooms"],
  },
  message: {
    summary: `Send to the current room (content trimmed, 1-${CONTENT_MAX} characters). The sender gets the echo, then the bot's reply when the bot is on.`,
    example: { type: "message", content: "Hello everyone!" },
    answers: ["message", "bot"],
  },
  direct: {
    summary: "Send to every socket of one user (and echo to the sender).",
    example: { type: "direct", user_id: USER_B, content: "hi" },
    answers: ["direct"],
  },
  broadcast: {
    summary: "Superusers only: send to every socket of the server (of the cluster).",
    example: { type: "broadcast", content: "maintenance at 5" },
    answers: ["broadcast"],
  },
  history: {
    summary: `A page of a room's stored messages, oldest first (1.1): \`room_name\` defaults to the current room, \`before\` returns seq < before, \`limit\` 1-${HISTORY_LIMIT_MAX} (default ${HISTORY_LIMIT_DEFAULT}).`,
    example: { type: "history", room_name: "general", before: 8, limit: 20 },
    answers: ["history"],
  },
  presence: {
    summary: "Who is in a room, cluster-wide (1.1); `room_name` defaults to the current room.",
    example: { type: "presence", room_name: "general" },
    answers: ["presence"],
  },
  typing: {
    summary:
      "Tell the room's other presence sockets that you are typing (1.1; JSON sockets only get it; never stored or echoed).",
    example: { type: "typing" },
    answers: [],
  },
};

interface EventDoc {
  summary: string;
  /** What the event looks like on the wire, rendered by protocol.ts. */
  sample: Rendered | { json: string; text: string | undefined; textOthers?: string };
}

const directFrames = renderDirect({
  id: "d1",
  from: USER_A,
  to: USER_B,
  content: "hi",
  sent_at: AT,
});

/** Every server event. Typed over `Events`: an event added there must be described here. */
const EVENT_DOCS: Record<EventName, EventDoc> = {
  welcome: { summary: "Sent once, right after the upgrade.", sample: events.welcome(USER_A) },
  room_created: { summary: "Answer to create_room.", sample: events.roomCreated("general") },
  room_joined: {
    summary:
      "Answer to join_room: sockets in the room now (the joiner included), the room's epoch and latest seq; `recovered` only when the join had `since`.",
    sample: events.roomJoined("general", 2, { epoch: EPOCH, seq: 7 }, true),
  },
  room_left: { summary: "The socket left a room.", sample: events.roomLeft("general") },
  room_closed: {
    summary: "A room was closed: the closer's line differs from the other members' (text format).",
    sample: {
      ...events.roomClosedToCloser("general", USER_A),
      textOthers: events.roomClosedToMembers("general", USER_A).text,
    },
  },
  room_update: {
    summary: "Follows every change of the socket's current room (`null`: none).",
    sample: events.roomUpdate("general"),
  },
  rooms: {
    summary: "Answer to list_rooms, oldest first.",
    sample: events.rooms([{ name: "general", creator: USER_A, members: 2, created_at: AT }]),
  },
  message: {
    summary:
      "A room message (echo to the sender, delivery to the others; a replay after recovery). No `text` field: the line differs for the sender and the others.",
    sample: {
      json: messageFrames.json(SAMPLE),
      text: messageFrames.self(SAMPLE),
      textOthers: messageFrames.others(SAMPLE),
    },
  },
  direct: {
    summary: "A direct message, to every socket of the recipient and echoed to the sender.",
    sample: {
      json: directFrames.json,
      text: directFrames.recipient,
      textOthers: directFrames.sender,
    },
  },
  broadcast: {
    summary: "To every socket (a superuser's broadcast command or POST /api/v1/ws/broadcast).",
    sample: renderBroadcast({ id: "b1", from: USER_A, content: "maintenance at 5", sent_at: AT }),
  },
  bot: { summary: "The test bot's reply, to the sender only.", sample: events.bot("apa kabar") },
  error: {
    summary: "A refused command; the socket stays usable. `code` says why (see the list).",
    sample: errors.roomNotFound("general"),
  },
  history: {
    summary: "Answer to history (1.1): messages with `seq`, oldest first.",
    sample: events.history("general", EPOCH, [SAMPLE]),
  },
  presence: {
    summary: "Answer to presence (1.1): users in the room and their socket count there.",
    sample: events.presence("general", [{ user_id: USER_A, connections: 2 }]),
  },
  presence_join: {
    summary:
      "To presence sockets (1.1): a user's first socket entered the room (a second tab makes none).",
    sample: events.presenceJoin("general", USER_B),
  },
  presence_leave: {
    summary: "To presence sockets (1.1): a user's last socket left the room.",
    sample: events.presenceLeave("general", USER_B),
  },
  typing: {
    summary: "To the room's other presence sockets, JSON format only (1.1).",
    sample: { json: events.typing("general", USER_B), text: undefined },
  },
};

/** Why each error code is sent, with its text lines as protocol.ts renders them. */
export const ERROR_DOCS: Record<ErrorCode, { meaning: string; samples: Rendered[] }> = {
  invalid_json: { meaning: "the text frame is not JSON", samples: [errors.invalidJson()] },
  invalid_message: {
    meaning:
      "not an object, a binary frame, a missing or ill-typed field, a bad `type`, room name or content",
    samples: [errors.invalidMessage(FIELD_RULES.room_name as string)],
  },
  unknown_type: {
    meaning: "a well-formed `type` with no handler",
    samples: [errors.unknownType("dance")],
  },
  room_not_found: { meaning: "no such room", samples: [errors.roomNotFound("general")] },
  room_exists: { meaning: "create_room of a taken name", samples: [errors.roomExists("general")] },
  already_in_room: {
    meaning: "join_room of the current room",
    samples: [errors.alreadyInRoom("general")],
  },
  not_in_room: {
    meaning: "the command needs a current room",
    samples: [errors.notInRoomToSend(), errors.notInRoom()],
  },
  not_room_creator: {
    meaning: "close_room of a room someone else created",
    samples: [errors.notRoomCreator("general")],
  },
  user_offline: {
    meaning: "direct to a user with no socket",
    samples: [errors.userOffline(USER_B)],
  },
  forbidden: {
    meaning: "broadcast by a user who is not a superuser",
    samples: [errors.forbidden()],
  },
  rate_limited: {
    meaning: "the user's token bucket is empty: the frame was dropped unread",
    samples: [errors.rateLimited(3)],
  },
  limit_reached: {
    meaning: "MAX_ROOMS or MAX_ROOMS_PER_USER",
    samples: [errors.limitReached("Rooms per user")],
  },
  unavailable: {
    meaning: "cluster mode: Redis (or the user database) cannot be reached right now",
    samples: [errors.unavailable()],
  },
};

/** How and why the server closes a socket. */
export const CLOSE_CODES: ReadonlyArray<{ code: number; reasons: string[]; when: string }> = [
  {
    code: 1008,
    reasons: [
      "Authentication failed",
      "Unsupported format",
      "Too many connections",
      "Token expired",
      "User deactivated",
      "User deleted",
    ],
    when: "policy: a refused token or format, MAX_CONNECTIONS_PER_USER, the token's `exp`, a deactivated or deleted user",
  },
  { code: 1009, reasons: [], when: "a frame over WS_MAX_PAYLOAD_BYTES" },
  { code: 1001, reasons: ["Server shutting down"], when: "graceful stop (SIGTERM, SIGINT)" },
  {
    code: 1006,
    reasons: [],
    when: "the server ends the connection without a close handshake, so the client reports 1006: no answer to pings past WS_IDLE_TIMEOUT_SECONDS, or a slow reader over WS_BACKPRESSURE_LIMIT_BYTES",
  },
];

const ref = (path: string) => ({ $ref: path });
const channelMessage = (key: string) => ref(`#/channels/ws/messages/${key}`);
const commandKey = (type: string) => `command.${type}`;
const eventKey = (type: string) => `event.${type}`;

/** The payload of a command: its handler's schema, with the `type` every frame carries. */
function commandPayload(type: string, schema: TSchema): Json {
  const s = plain(schema);
  const properties = (s.properties as Json | undefined) ?? {};
  const required = (s.required as string[] | undefined) ?? [];
  return {
    ...s,
    type: "object",
    required: ["type", ...required],
    properties: { type: { type: "string", const: type }, ...properties },
    description: "Unknown extra fields are ignored.",
  };
}

function eventMessage(name: EventName): Json {
  const doc = EVENT_DOCS[name];
  const { sample } = doc;
  const lines = [doc.summary, ""];
  if (sample.text === undefined) lines.push("Text format: never sent.");
  else if ("textOthers" in sample && sample.textOthers !== undefined)
    lines.push(`Text format: \`${sample.text}\` (to the others: \`${sample.textOthers}\`).`);
  else lines.push(`Text format: the \`text\` field as the frame: \`${sample.text}\`.`);
  return {
    name,
    title: name,
    summary: doc.summary,
    description: lines.join("\n"),
    contentType: "application/json",
    payload: plain(Events[name]),
    examples: [{ name, payload: JSON.parse(sample.json) as Json }],
  };
}

function errorMessage(): Json {
  const base = eventMessage("error");
  const list = ERROR_CODES.map((code) => {
    const d = ERROR_DOCS[code];
    return `- \`${code}\`: ${d.meaning}. Text: ${d.samples.map((s) => `\`${s.text}\``).join(" or ")}`;
  });
  return {
    ...base,
    description: `${base.description as string}\n\nCodes, in the order a frame is checked (rate limit, JSON, shape, handler, state):\n${list.join("\n")}`,
    examples: ERROR_CODES.flatMap((code) =>
      ERROR_DOCS[code].samples.map((s, i) => ({
        name: i === 0 ? code : `${code}_${i + 1}`,
        payload: JSON.parse(s.json) as Json,
      })),
    ),
  };
}

const CHANNEL_DESCRIPTION = [
  "One WebSocket per client. `GET /api/v1/ws?token=<JWT>&format=json|text` (or `Authorization: Bearer <JWT>`)",
  "upgrades; the token is the access token of `POST /api/v1/login/access-token`.",
  "",
  "Client frames are JSON text frames, one command each. In `format=json` (default) every server",
  "frame is one JSON event with a `type`; events other than message, direct and broadcast carry",
  "`text`, the line `format=text` sends for that event instead. Both formats emit the same events",
  "in the same order (typing: JSON only).",
  "",
  "Close codes:",
  ...CLOSE_CODES.map(
    (c) =>
      `- ${c.code}${c.reasons.length ? ` (${c.reasons.map((r) => `\`${r}\``).join(", ")})` : ""}: ${c.when}`,
  ),
  "",
  "Before the upgrade: HTTP 426 for a plain request, 503 with Retry-After when the user database is unreachable.",
].join("\n");

/** Builds the document for the handler registry the server runs with. */
export function asyncApiDocument(handlers: Handlers, version: string): Json {
  const messages: Record<string, Json> = {};
  const operations: Record<string, Json> = {};
  const documented = COMMAND_DOCS as Partial<Record<string, CommandDoc>>;
  for (const [type, handler] of handlers) {
    const doc = documented[type];
    const key = commandKey(type);
    messages[key] = {
      name: type,
      title: type,
      ...(doc ? { summary: doc.summary } : {}),
      contentType: "application/json",
      payload: commandPayload(type, handler.schema),
      ...(doc ? { examples: [{ name: type, payload: doc.example }] } : {}),
    };
    const answers = [...(doc?.answers ?? []), "error" as const];
    operations[`receive.${type}`] = {
      action: "receive",
      channel: ref("#/channels/ws"),
      title: type,
      ...(doc ? { summary: doc.summary } : {}),
      messages: [channelMessage(key)],
      reply: {
        channel: ref("#/channels/ws"),
        messages: answers.map((e) => channelMessage(eventKey(e))),
      },
    };
  }
  for (const name of Object.keys(Events) as EventName[]) {
    const key = eventKey(name);
    messages[key] = name === "error" ? errorMessage() : eventMessage(name);
    operations[`send.${name}`] = {
      action: "send",
      channel: ref("#/channels/ws"),
      title: name,
      summary: EVENT_DOCS[name].summary,
      messages: [channelMessage(key)],
    };
  }
  return {
    asyncapi: "3.0.0",
    info: {
      title: "Kabar WebSocket protocol",
      version,
      description:
        "Kabar's real-time protocol, version 1.1, seen from the server: it receives commands and sends events. Generated from the schemas the server validates with.",
      license: { name: "MIT" },
    },
    defaultContentType: "application/json",
    servers: {
      kabar: {
        host: "{host}",
        protocol: "ws",
        pathname: "/api/v1/ws",
        description: "This server (wss behind TLS).",
        variables: { host: { default: "localhost:8000", description: "host:port of the server" } },
        security: [
          ref("#/components/securitySchemes/token"),
          ref("#/components/securitySchemes/bearer"),
        ],
      },
    },
    channels: {
      ws: {
        address: "/api/v1/ws",
        title: "Rooms",
        description: CHANNEL_DESCRIPTION,
        messages: Object.fromEntries(
          Object.keys(messages).map((key) => [key, ref(`#/components/messages/${key}`)]),
        ),
        bindings: {
          ws: {
            method: "GET",
            query: {
              type: "object",
              properties: {
                token: { type: "string", description: "the access token (JWT)" },
                format: {
                  type: "string",
                  enum: ["json", "text"],
                  default: "json",
                  description:
                    "how events are rendered; anything else: close 1008 `Unsupported format`",
                },
              },
            },
            headers: {
              type: "object",
              properties: {
                Authorization: {
                  type: "string",
                  description: "`Bearer <JWT>`, instead of ?token=",
                },
              },
            },
            bindingVersion: "0.1.0",
          },
        },
      },
    },
    operations,
    components: {
      messages,
      securitySchemes: {
        token: {
          type: "httpApiKey",
          name: "token",
          in: "query",
          description:
            "The access token in `?token=` (browsers cannot set headers on a WebSocket).",
        },
        bearer: {
          type: "http",
          scheme: "bearer",
          bearerFormat: "JWT",
          description: "`Authorization: Bearer <JWT>` (non-browser clients).",
        },
      },
    },
  };
}
