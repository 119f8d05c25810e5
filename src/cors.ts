// CORS from BACKEND_CORS_ORIGINS: exact origins, or "*" for any.
export function corsHeaders(allowed: string[], origin: string | null): Record<string, string> {
  if (!origin || allowed.length === 0) return {};
  if (allowed.includes("*")) return { "access-control-allow-origin": "*" };
  if (!allowed.includes(origin.replace(/\/$/, ""))) return {};
  return {
    "access-control-allow-origin": origin,
    "access-control-allow-credentials": "true",
    vary: "Origin",
  };
}

export function preflight(allowed: string[], request: Request): Response {
  const headers = corsHeaders(allowed, request.headers.get("origin"));
  if (headers["access-control-allow-origin"]) {
    headers["access-control-allow-methods"] = "GET, POST, PATCH, DELETE, OPTIONS";
    headers["access-control-allow-headers"] =
      request.headers.get("access-control-request-headers") ?? "authorization, content-type";
    headers["access-control-max-age"] = "600";
  }
  return new Response(null, { status: 204, headers });
}
