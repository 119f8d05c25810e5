// Request bodies of the REST API (TypeBox through Elysia's `t`).
import { t } from "elysia";

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
