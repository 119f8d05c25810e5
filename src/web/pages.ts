// The web chat (`/`) and admin page (`/admin`): HTML, one stylesheet, and each page's script,
// all built into this module (see bundle.ts) and served with a Content-Security-Policy that
// allows only this origin's scripts, styles and sockets: no inline script, nothing from a CDN.
import { Elysia } from "elysia";
import { bundle } from "./bundle.ts" with { type: "macro" };
import { adminHtml, chatHtml } from "./html.ts";
import { styleCss } from "./style.ts";

/** The pages' scripts, as served (minified ES modules). */
export const PAGE_SCRIPTS: Readonly<Record<string, string>> = {
  "chat.js": bundle("./browser/chat.ts"),
  "admin.js": bundle("./browser/admin.ts"),
};

/** A Host header fit to be echoed in the policy (host, optional port); anything else is dropped. */
const HOST = /^[A-Za-z0-9.-]{1,253}(:[0-9]{1,5})?$|^\[[0-9A-Fa-f:.]{2,45}\](:[0-9]{1,5})?$/;

/** The policy of every page and asset: this origin only, and its WebSocket endpoint. */
export function contentSecurityPolicy(host: string | null): string {
  const sockets = host && HOST.test(host) ? ` ws://${host} wss://${host}` : "";
  return [
    "default-src 'none'",
    "script-src 'self'",
    "style-src 'self'",
    "img-src 'self' data:",
    `connect-src 'self'${sockets}`,
    "base-uri 'none'",
    "form-action 'self'",
    "frame-ancestors 'none'",
  ].join("; ");
}

const serve = (request: Request, body: string, type: string): Response =>
  new Response(body, {
    headers: {
      "content-type": type,
      "content-security-policy": contentSecurityPolicy(request.headers.get("host")),
      "x-content-type-options": "nosniff",
      "referrer-policy": "no-referrer",
      "cache-control": "no-cache",
    },
  });

const HTML = "text/html; charset=utf-8";
const JS = "text/javascript; charset=utf-8";

/** Pages and their assets are not part of the REST API document. */
const PAGE = { detail: { hide: true } };

export function webRoutes() {
  const chatJs = PAGE_SCRIPTS["chat.js"] as string;
  const adminJs = PAGE_SCRIPTS["admin.js"] as string;
  return new Elysia()
    .get("/", ({ request }) => serve(request, chatHtml, HTML), PAGE)
    .get("/admin", ({ request }) => serve(request, adminHtml, HTML), PAGE)
    .get("/assets/chat.js", ({ request }) => serve(request, chatJs, JS), PAGE)
    .get("/assets/admin.js", ({ request }) => serve(request, adminJs, JS), PAGE)
    .get(
      "/assets/style.css",
      ({ request }) => serve(request, styleCss, "text/css; charset=utf-8"),
      PAGE,
    );
}
