// REST errors are `{"detail": "..."}` with the status the contract names. Validation failures
// get one short line, never the schema or the input echoed back.
export class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly detail: string,
    readonly headers: Record<string, string> = {},
  ) {
    super(detail);
  }
}

export const detail = (status: number, text: string, headers: Record<string, string> = {}) =>
  new Response(JSON.stringify({ detail: text }), {
    status,
    headers: { "content-type": "application/json", ...headers },
  });

interface ValueErrorLike {
  path?: string;
  message?: string;
}

/** One line from an Elysia ValidationError: which field, and what is wrong with it. */
export function validationDetail(error: unknown): string {
  const all = (error as { all?: ValueErrorLike[] }).all;
  const first = Array.isArray(all) ? all[0] : undefined;
  if (!first) return "Invalid request";
  const field = (first.path ?? "").replace(/^\//, "").replaceAll("/", ".");
  const message = (first.message ?? "is invalid").replace(/\.$/, "");
  return field ? `${field}: ${message}` : message;
}
