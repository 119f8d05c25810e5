// Access tokens: HS256 JWTs (claim `sub` = user id, `exp` required), signed and verified with
// @elysiajs/jwt. `authenticate` also checks that the user exists and is active. On failure it
// returns a cause for the server log; the token itself is never logged.
import { jwt } from "@elysiajs/jwt";
import type { UserRecord, UserStore } from "./users/store.ts";

export type AuthResult = { ok: true; user: UserRecord; exp: number } | { ok: false; cause: string };

const VERIFY = { algorithms: ["HS256" as const], requiredClaims: ["exp", "sub"] };
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export function createJwtPlugin(secret: string) {
  return jwt({ name: "jwt", secret, alg: "HS256" });
}

type JwtPlugin = ReturnType<typeof createJwtPlugin>;

function decodePart(part: string | undefined): Record<string, unknown> | undefined {
  if (!part) return undefined;
  try {
    const value: unknown = JSON.parse(Buffer.from(part, "base64url").toString("utf8"));
    return value !== null && typeof value === "object"
      ? (value as Record<string, unknown>)
      : undefined;
  } catch {
    return undefined;
  }
}

/** Why a token that failed verification failed: for the log only. */
function diagnose(token: string): string {
  const parts = token.split(".");
  if (parts.length !== 3) return "malformed token";
  const header = decodePart(parts[0]);
  const payload = decodePart(parts[1]);
  if (!header || !payload) return "malformed token";
  if (header.alg !== "HS256") return `unsupported alg ${String(header.alg).slice(0, 16)}`;
  if (typeof payload.exp !== "number") return "token has no exp";
  if (payload.exp * 1000 <= Date.now()) return "token expired";
  if (typeof payload.sub !== "string") return "token has no sub";
  return "bad signature";
}

export class Tokens {
  private readonly signer: JwtPlugin["decorator"]["jwt"];

  constructor(
    secret: string,
    private readonly expireMinutes: number,
    private readonly users: UserStore,
  ) {
    this.signer = createJwtPlugin(secret).decorator.jwt;
  }

  issue(userId: string): Promise<string> {
    const exp = Math.floor(Date.now() / 1000) + this.expireMinutes * 60;
    return this.signer.sign({ sub: userId, exp });
  }

  async authenticate(token: string | null | undefined): Promise<AuthResult> {
    if (!token) return { ok: false, cause: "missing token" };
    if (token.length > 4096) return { ok: false, cause: "malformed token" };
    const payload = await this.signer.verify(token, VERIFY);
    if (!payload) return { ok: false, cause: diagnose(token) };
    const sub = payload.sub;
    if (typeof sub !== "string" || !UUID.test(sub))
      return { ok: false, cause: "sub is not a UUID" };
    const user = await this.users.getById(sub.toLowerCase());
    if (!user) return { ok: false, cause: "unknown user" };
    if (!user.is_active) return { ok: false, cause: "inactive user" };
    return { ok: true, user, exp: Number(payload.exp) };
  }
}

/** The bearer token of an `Authorization` header, if any. */
export function bearer(header: string | null | undefined): string | undefined {
  if (!header) return undefined;
  const m = /^Bearer\s+(\S+)\s*$/i.exec(header);
  return m?.[1];
}
