// Request bodies of the REST API (TypeBox through Elysia's `t`).
import { t } from "elysia";
import { RoomSummary } from "../protocol.ts";

export const Email = t.String({ pattern: "^[^@\\s]+@[^@\\s]+\\.[^@\\s]+$", maxLength: 255 });
export const Password = t.String({ minLength: 8, maxLength: 128 });
const FullName = t.Union([t.String({ maxLength: 255 }), t.Null()]);

export const Login = t.Object({ username: t.String(), password: t.String() });
export const Signup = t.Object({
  email: Email,
  password: Password,
  full_name: t.Optional(FullName),
});
export const UserCreate = t.Object({
  email: Email,
  password: Password,
  full_name: t.Optional(FullName),
  is_superuser: t.Optional(t.Boolean()),
  is_active: t.Optional(t.Boolean()),
});
export const UserUpdate = t.Object({
  email: t.Optional(Email),
  password: t.Optional(Password),
  full_name: t.Optional(FullName),
  is_superuser: t.Optional(t.Boolean()),
  is_active: t.Optional(t.Boolean()),
});
export const Paging = t.Object({
  skip: t.Optional(t.Integer({ minimum: 0, maximum: Number.MAX_SAFE_INTEGER })),
  limit: t.Optional(t.Integer({ minimum: 1, maximum: 1000 })),
});
export const BroadcastBody = t.Object({ content: t.String() });

// Response bodies: not validated by Elysia (a `response` schema would also reshape what is sent),
// only published in the OpenAPI document; test/api-docs.test.ts checks real answers against them.
const Time = t.String({ format: "date-time" });
export const UserPublic = t.Object({
  id: t.String({ format: "uuid" }),
  email: t.String(),
  full_name: t.Union([t.String(), t.Null()]),
  is_active: t.Boolean(),
  is_superuser: t.Boolean(),
  created_at: Time,
});
export const UsersPublic = t.Object({ data: t.Array(UserPublic), count: t.Integer() });
export const AccessToken = t.Object({
  access_token: t.String(),
  token_type: t.Literal("bearer"),
});
export const MessageReply = t.Object({ message: t.String() });
export const ErrorDetail = t.Object({ detail: t.String() });
export const Health = t.Object({
  status: t.Union([t.Literal("healthy"), t.Literal("degraded")]),
  service: t.Literal("websocket"),
  active_connections: t.Integer(),
  node: t.String(),
  redis: t.Union([t.Literal("up"), t.Literal("down"), t.Literal("off")]),
});
export const Stats = t.Object({
  total_connections: t.Integer(),
  total_rooms: t.Integer(),
  rooms: t.Array(RoomSummary),
  nodes: t.Array(t.Object({ id: t.String(), connections: t.Integer() })),
});
export const NamesRequest = t.Object({
  ids: t.Array(t.String({ format: "uuid" }), { minItems: 1, maxItems: 200 }),
});
export const Names = t.Object({
  names: t.Record(t.String(), t.String(), {
    description: "user id → full name, or the id's first 8 characters; unknown ids left out",
  }),
});
export const BroadcastSent = t.Object({
  status: t.Literal("sent"),
  id: t.String(),
  recipients: t.Integer(),
});
