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

/** What a field must be, in words: used instead of TypeBox's message (which can quote patterns). */
const FIELD_HINTS: Record<string, string> = {
  email: "must be a valid email address",
  password: "must be 8 to 128 characters",
  full_name: "must be a string of at most 255 characters, or null",
  username: "is required (the email)",
  content: "must be a string",
  skip: "must be a whole number >= 0",
  limit: "must be a whole number from 1 to 1000",
  is_active: "must be true or false",
  is_superuser: "must be true or false",
};

/** One line from an Elysia ValidationError: which field, and what is wrong with it. */
export function validationDetail(error: unknown): string {
  const all = (error as { all?: ValueErrorLike[] }).all;
  const first = Array.isArray(all) ? all[0] : undefined;
  if (!first) return "Invalid request";
  const field = (first.path ?? "").replace(/^\//, "").replaceAll("/", ".");
  if (!field) return "request body must be an object";
  return `${field}: ${FIELD_HINTS[field] ?? "is invalid"}`;
}
