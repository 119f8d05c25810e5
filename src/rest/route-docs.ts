// What each REST route answers, for the OpenAPI document (`detail` of the route). Request
// schemas come from the routes' own `body`/`query` (schemas.ts); response bodies are named
// schemas of schemas.ts, listed under components.schemas by api-docs.ts.
import type { DocumentDecoration } from "elysia";

type Responses = NonNullable<DocumentDecoration["responses"]>;

const schemaRef = (name: string) => ({ $ref: `#/components/schemas/${name}` });
const json = (schema: string, description: string) => ({
  description,
  content: { "application/json": { schema: schemaRef(schema) } },
});
const retryAfter = {
  "Retry-After": { description: "seconds to wait", schema: { type: "integer" as const } },
};
/** `{"detail": "..."}` with the given status meaning. */
const fail = (description: string, headers?: typeof retryAfter) => ({
  ...json("ErrorDetail", description),
  ...(headers ? { headers } : {}),
});

const E401 = fail("Not authenticated, or an invalid, expired or revoked token (or inactive user)");
const E403 = fail("The user doesn't have enough privileges");
const E404 = fail("User not found");
const E422 = fail("Malformed body or query: one line naming the field");
const E503 = fail("The user database (or Redis) is unreachable: try again", retryAfter);

const BEARER = [{ bearer: [] }];

const doc = (
  tags: string[],
  summary: string,
  responses: Responses,
  extra: Partial<DocumentDecoration> = {},
): DocumentDecoration & { responses: Responses } => ({
  tags,
  summary,
  responses: { ...responses, 503: E503 },
  ...extra,
});

export const ROUTE_DOCS = {
  login: doc(
    ["login"],
    "Log in: an access token for the WebSocket and the REST API",
    {
      200: json("AccessToken", "The access token (HS256 JWT, `sub` = user id)"),
      400: fail("Incorrect email or password / Inactive user"),
      422: E422,
      429: fail("Too many failed attempts from this address or for this email", retryAfter),
    },
    {
      description:
        "OAuth2 password form (`username` = the email, `password`); JSON is accepted too. Ten failures in 15 minutes per address or per email answer 429 until the window ends.",
    },
  ),
  signup: doc(["users"], "Register (when USERS_OPEN_REGISTRATION is on)", {
    200: json("User", "The new user"),
    400: fail("The user with this email already exists in the system."),
    403: fail("Open user registration is forbidden on this server"),
    422: E422,
  }),
  me: doc(
    ["users"],
    "The calling user",
    { 200: json("User", "The user"), 401: E401 },
    {
      security: BEARER,
    },
  ),
  list: doc(
    ["users"],
    "List users (superusers)",
    { 200: json("Users", "One page and the total count"), 401: E401, 403: E403, 422: E422 },
    { security: BEARER },
  ),
  create: doc(
    ["users"],
    "Create a user (superusers)",
    {
      200: json("User", "The new user"),
      400: fail("The user with this email already exists in the system."),
      401: E401,
      403: E403,
      422: E422,
    },
    { security: BEARER },
  ),
  get: doc(
    ["users"],
    "One user: yourself, or anyone for superusers",
    { 200: json("User", "The user"), 401: E401, 403: E403, 404: E404 },
    { security: BEARER },
  ),
  update: doc(
    ["users"],
    "Change a user (superusers); `is_active: false` closes the user's sockets (1008)",
    {
      200: json("User", "The changed user"),
      400: fail("The user with this email already exists in the system."),
      401: E401,
      403: E403,
      404: E404,
      422: E422,
    },
    { security: BEARER },
  ),
  remove: doc(
    ["users"],
    "Delete a user (superusers, not yourself); closes the user's sockets (1008)",
    {
      200: json("Message", "`User deleted successfully`"),
      401: E401,
      403: fail(
        "The user doesn't have enough privileges / Super users are not allowed to delete themselves",
      ),
      404: E404,
    },
    { security: BEARER },
  ),
  names: doc(
    ["users"],
    "Display names for user ids (any logged-in user; never emails)",
    {
      200: json("Names", "A name per known id"),
      401: E401,
      422: fail("ids must be a list of 1-200 user ids (UUIDs)"),
    },
    {
      security: BEARER,
      requestBody: {
        required: true,
        content: { "application/json": { schema: schemaRef("NamesRequest") } },
      },
    },
  ),
  upgrade: doc(
    ["websocket"],
    "The WebSocket endpoint (the protocol: /api/v1/asyncapi.json)",
    {
      101: { description: "Switching Protocols; a refused token or format is closed with 1008" },
      426: fail("Expected a WebSocket upgrade"),
    },
    {
      description:
        "`?token=<JWT>` or `Authorization: Bearer <JWT>`, `?format=json|text`. `/api/v1/ws` is served by Bun before Elysia (the fast path); `/api/v1/ws/` is the same endpoint as an Elysia route. Commands, events, error codes and close codes are in the AsyncAPI document.",
      parameters: [
        { name: "token", in: "query", required: false, schema: { type: "string" } },
        {
          name: "format",
          in: "query",
          required: false,
          schema: { type: "string", enum: ["json", "text"], default: "json" },
        },
      ],
    },
  ),
  health: {
    tags: ["websocket"],
    summary: "Liveness: this node's sockets and Redis state (no auth)",
    responses: { 200: json("Health", "`degraded` while Redis is unreachable (still 200)") },
  } satisfies DocumentDecoration,
  stats: doc(
    ["websocket"],
    "Connections and rooms, cluster-wide",
    { 200: json("Stats", "Counts, rooms (oldest first) and nodes"), 401: E401 },
    { security: BEARER },
  ),
  broadcast: doc(
    ["websocket"],
    "Send a broadcast event to every socket (superusers)",
    {
      200: json("BroadcastSent", "Sent; `recipients` counts this node's sockets"),
      401: E401,
      403: E403,
      422: E422,
    },
    { security: BEARER },
  ),
  internals: doc(
    ["operations"],
    "This node's internal sizes (superusers): memory, open files, map and set entries",
    {
      200: {
        description: "RSS, heap, open fds and entry counts (for soak tests and leak hunting)",
        content: { "application/json": { schema: { type: "object" as const } } },
      },
      401: E401,
      403: E403,
    },
    { security: BEARER },
  ),
  metrics: {
    tags: ["operations"],
    summary: "Prometheus metrics of this node (text exposition format, no auth)",
    responses: {
      200: {
        description: "Counters, gauges and histograms (see the README's Metrics section)",
        content: { "text/plain": { schema: { type: "string" as const } } },
      },
    },
  } satisfies DocumentDecoration,
  asyncapi: {
    tags: ["websocket"],
    summary: "The AsyncAPI 3.0 document of the WebSocket protocol",
    responses: {
      200: {
        description: "Every command, event, error code and close code",
        content: { "application/json": { schema: { type: "object" as const } } },
      },
    },
  } satisfies DocumentDecoration,
} satisfies Record<string, DocumentDecoration>;
