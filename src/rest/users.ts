// Login and user management: /login/access-token, /users/*.
import { Elysia } from "elysia";
import { hashPassword } from "../users/password.ts";
import { publicUser } from "../users/store.ts";
import { currentUser, type Deps, superuser } from "./context.ts";
import { HttpError } from "./errors.ts";
import { LoginThrottle } from "./login-throttle.ts";
import { ROUTE_DOCS } from "./route-docs.ts";
import { Login, Paging, Signup, UserCreate, UserUpdate } from "./schemas.ts";

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
/** Verified against when the email is unknown, so a miss costs as much time as a hit. */
let dummyHash: Promise<string> | undefined;

export function userRoutes(deps: Deps) {
  const { users, tokens, hub, log } = deps;
  const throttle = deps.loginThrottle ?? new LoginThrottle();
  dummyHash ??= hashPassword(crypto.randomUUID());

  const findOr404 = async (id: string) => {
    const user = UUID.test(id) ? await users.getById(id.toLowerCase()) : undefined;
    if (!user) throw new HttpError(404, "User not found");
    return user;
  };

  return new Elysia({ prefix: "/api/v1" })
    .post(
      "/login/access-token",
      async ({ body, request, server }) => {
        const now = throttle.now();
        const email = body.username.trim().toLowerCase();
        const ip = deps.clientAddress.of(request, server);
        const keys = [`ip:${ip}`, `email:${email}`];
        const wait = throttle.retryAfter(keys, now);
        if (wait > 0) {
          log.warn("login throttled", { ip });
          throw new HttpError(429, "Too many failed login attempts. Try again later.", {
            "retry-after": String(wait),
          });
        }
        const user = await users.getByEmail(email);
        const ok = await Bun.password.verify(
          body.password,
          user?.hashed_password ?? (await (dummyHash as Promise<string>)),
        );
        if (!user || !ok) {
          throttle.fail(keys, now);
          const cause = user ? "wrong password" : "unknown email";
          deps.hub.metrics.authFailure(cause);
          log.info("login failed", { ip, cause });
          throw new HttpError(400, "Incorrect email or password");
        }
        throttle.succeed(`email:${email}`);
        if (!user.is_active) throw new HttpError(400, "Inactive user");
        return { access_token: await tokens.issue(user.id), token_type: "bearer" };
      },
      { body: Login, detail: ROUTE_DOCS.login },
    )
    .post(
      "/users/signup",
      async ({ body }) => {
        if (!deps.config.usersOpenRegistration)
          throw new HttpError(403, "Open user registration is forbidden on this server");
        const user = await users.create({
          email: body.email,
          hashed_password: await hashPassword(body.password),
          full_name: body.full_name,
        });
        return publicUser(user);
      },
      { body: Signup, detail: ROUTE_DOCS.signup },
    )
    .get("/users/me", async ({ request }) => publicUser(await currentUser(deps, request)), {
      detail: ROUTE_DOCS.me,
    })
    .get(
      "/users",
      async ({ request, query }) => {
        await superuser(deps, request);
        return users.list(query.skip ?? 0, query.limit ?? 100);
      },
      { query: Paging, detail: ROUTE_DOCS.list },
    )
    .post(
      "/users",
      async ({ request, body }) => {
        await superuser(deps, request);
        const { password, ...rest } = body;
        const user = await users.create({ ...rest, hashed_password: await hashPassword(password) });
        return publicUser(user);
      },
      { body: UserCreate, detail: ROUTE_DOCS.create },
    )
    .get(
      "/users/:id",
      async ({ request, params }) => {
        const me = await currentUser(deps, request);
        if (me.id === params.id.toLowerCase()) return publicUser(me);
        if (!me.is_superuser) throw new HttpError(403, "The user doesn't have enough privileges");
        return publicUser(await findOr404(params.id));
      },
      { detail: ROUTE_DOCS.get },
    )
    .patch(
      "/users/:id",
      async ({ request, params, body }) => {
        await superuser(deps, request);
        const target = await findOr404(params.id);
        const { password, ...rest } = body;
        const patch = {
          ...rest,
          hashed_password: password === undefined ? undefined : await hashPassword(password),
        };
        const user = await users.update(target.id, patch);
        if (!user) throw new HttpError(404, "User not found");
        hub.userChanged(user.id);
        if (!user.is_active) {
          const n = hub.kickUser(user.id, "User deactivated");
          if (n > 0) log.info("user deactivated, sockets closed", { user: user.id, sockets: n });
        }
        return publicUser(user);
      },
      { body: UserUpdate, detail: ROUTE_DOCS.update },
    )
    .delete(
      "/users/:id",
      async ({ request, params }) => {
        const me = await superuser(deps, request);
        const target = await findOr404(params.id);
        if (target.id === me.id)
          throw new HttpError(403, "Super users are not allowed to delete themselves");
        await users.delete(target.id);
        hub.userChanged(target.id);
        hub.kickUser(target.id, "User deleted");
        return { message: "User deleted successfully" };
      },
      { detail: ROUTE_DOCS.remove },
    );
}
