// Display names for user ids, for any logged-in user: what a chat page shows instead of UUIDs.
// A name is the user's full name, or the first 8 characters of the id; never an email.
import { Elysia } from "elysia";
import { currentUser, type Deps } from "./context.ts";
import { HttpError } from "./errors.ts";
import { ROUTE_DOCS } from "./route-docs.ts";

export const NAMES_MAX_IDS = 200;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const BAD_IDS = `ids must be a list of 1-${NAMES_MAX_IDS} user ids (UUIDs)`;

/** The short form of an id shown when a user has no full name. */
export const shortId = (id: string): string => id.slice(0, 8);

/** The ids of a `{"ids": [...]}` body, lower-cased and without repeats; throws 422 otherwise. */
function parseIds(body: unknown): string[] {
  const ids = (body as { ids?: unknown } | null | undefined)?.ids;
  if (!Array.isArray(ids) || ids.length === 0 || ids.length > NAMES_MAX_IDS)
    throw new HttpError(422, BAD_IDS);
  const out = new Set<string>();
  for (const id of ids) {
    if (typeof id !== "string" || !UUID.test(id)) throw new HttpError(422, BAD_IDS);
    out.add(id.toLowerCase());
  }
  return [...out];
}

export function nameRoutes(deps: Deps) {
  const { users } = deps;
  return new Elysia({ prefix: "/api/v1" }).post(
    "/users/names",
    async ({ request, body }) => {
      await currentUser(deps, request);
      const ids = parseIds(body);
      const found = await Promise.all(ids.map((id) => users.getCached(id) ?? users.getById(id)));
      const names: Record<string, string> = {};
      for (const user of found) {
        if (!user) continue;
        const full = user.full_name?.trim();
        names[user.id] = full ? full : shortId(user.id);
      }
      return { names };
    },
    { detail: ROUTE_DOCS.names },
  );
}
