// The API documents: OpenAPI 3.1 of the REST routes (@elysiajs/openapi, JSON at /openapi/json,
// a reader at /openapi that needs no network) and the AsyncAPI 3.0 document of the WebSocket
// protocol at /api/v1/asyncapi.json. Both are built once, on first request.
import { openapi } from "@elysiajs/openapi";
import type { TSchema } from "@sinclair/typebox";
import { Elysia } from "elysia";
import { asyncApiDocument } from "../asyncapi.ts";
import { VERSION } from "../version.ts";
import type { Handlers } from "../ws/handler.ts";
import { OPENAPI_PAGE } from "./openapi-page.ts";
import { ROUTE_DOCS } from "./route-docs.ts";
import {
  AccessToken,
  BroadcastSent,
  ErrorDetail,
  Health,
  MessageReply,
  Names,
  NamesRequest,
  Stats,
  UserPublic,
  UsersPublic,
} from "./schemas.ts";

export const OPENAPI_PATH = "/openapi";
export const OPENAPI_JSON_PATH = "/openapi/json";
export const ASYNCAPI_PATH = "/api/v1/asyncapi.json";

/** The response schemas the route docs name, as plain JSON Schema. */
const SCHEMAS: Record<string, TSchema> = {
  AccessToken,
  BroadcastSent,
  ErrorDetail,
  Health,
  Message: MessageReply,
  Names,
  NamesRequest,
  Stats,
  User: UserPublic,
  Users: UsersPublic,
};
type SchemaObject = Record<string, unknown>;
const components = Object.fromEntries(
  Object.entries(SCHEMAS).map(([name, s]) => [name, JSON.parse(JSON.stringify(s)) as SchemaObject]),
);

const DESCRIPTION = `REST API of Kabar, a real-time rooms server. Errors are \`{"detail": "..."}\`: 400 bad input or state, 401 missing or invalid token, 403 not allowed, 404 unknown id, 422 malformed body, 429 throttled, 503 a backend unreachable (with Retry-After). Paths work with and without the trailing slash. The WebSocket protocol (${ASYNCAPI_PATH}) is an AsyncAPI 3.0 document.`;

export function apiDocs(handlers: Handlers) {
  let asyncapi: string | undefined;
  return new Elysia({ name: "kabar-api-docs" })
    .use(
      openapi({
        path: OPENAPI_PATH,
        specPath: OPENAPI_JSON_PATH,
        // The plugin's own UIs (Scalar, Swagger UI) load their code from a CDN: /openapi below
        // is a reader of our own, served from the binary.
        provider: null,
        // `.json` paths are not skipped as static files: the AsyncAPI route is documented.
        exclude: { staticFile: false },
        documentation: {
          info: { title: "Kabar REST API", version: VERSION, description: DESCRIPTION },
          tags: [
            { name: "login", description: "Access tokens" },
            { name: "users", description: "Signup and user management" },
            { name: "websocket", description: "The WebSocket endpoint and its companions" },
          ],
          // The native Bun route (src/app.ts `serve.routes`) is not an Elysia route: listed here.
          paths: {
            "/api/v1/ws": { get: { ...ROUTE_DOCS.upgrade, operationId: "connectWebSocket" } },
          },
          components: {
            schemas: components,
            securitySchemes: {
              bearer: {
                type: "http",
                scheme: "bearer",
                bearerFormat: "JWT",
                description: "The access_token of POST /api/v1/login/access-token",
              },
            },
          },
        },
      }),
    )
    .get(
      OPENAPI_PATH,
      () =>
        new Response(OPENAPI_PAGE, {
          headers: { "content-type": "text/html; charset=utf-8", "cache-control": "no-cache" },
        }),
      { detail: { hide: true } },
    )
    .get(
      ASYNCAPI_PATH,
      () => {
        asyncapi ??= JSON.stringify(asyncApiDocument(handlers, VERSION));
        return new Response(asyncapi, { headers: { "content-type": "application/json" } });
      },
      { detail: ROUTE_DOCS.asyncapi },
    );
}
