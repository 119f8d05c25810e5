// Preloaded for every `bun test` run (bunfig.toml): after the last test file, every log line of
// every server the run started — each startServer (test/helpers.ts), the login-throttle
// server, and each node process of test/cluster-harness.ts — is searched for every secret the
// run handed to those servers: access tokens issued through the helpers (their signature segment
// is enough to find one), the passwords of the users they made or logged in, the superuser's
// password and SECRET_KEY. One hit fails the run (a failed global afterAll fails `bun test`).
// Not covered: servers a test starts by other means, and secrets a test makes up itself (those
// tests check their own logs, e.g. test/log-secrets.test.ts, test/auth.test.ts).
import { afterAll, expect } from "bun:test";

export interface LogAudit {
  /** Log line arrays of the servers started so far (filled in as the servers write). */
  logs: string[][];
  /** Tokens and passwords given to those servers. */
  secrets: Set<string>;
}

const KEY = "__kabarLogAudit";
const store = globalThis as unknown as Record<string, LogAudit | undefined>;

/** The run's audit (one per `bun test` process, shared by every test file). */
export function logAudit(): LogAudit {
  store[KEY] ??= { logs: [], secrets: new Set() };
  return store[KEY];
}

/** Remembers a log line array to search at the end of the run. */
export const auditLogs = (lines: string[]): void => {
  logAudit().logs.push(lines);
};

/** Remembers a secret (a token or a password) that no log line may contain. */
export const auditSecret = (secret: string | undefined): void => {
  if (secret && secret.length >= 8) logAudit().secrets.add(secret);
};

afterAll(() => {
  const audit = logAudit();
  const lines = audit.logs.flat();
  if (lines.length === 0) return;
  // Tokens: by their signature segment, looked up among the log's long base64url runs.
  const runs = new Set<string>();
  for (const line of lines) for (const m of line.matchAll(/[A-Za-z0-9_-]{40,}/g)) runs.add(m[0]);
  const text = lines.join("\n");
  const leaked: string[] = [];
  for (const secret of audit.secrets) {
    const parts = secret.split(".");
    const sig = parts.length === 3 ? (parts[2] as string) : "";
    const found = sig.length >= 40 ? runs.has(sig) || text.includes(secret) : text.includes(secret);
    if (found)
      leaked.push(sig ? `a token (…${sig.slice(-6)})` : `a password (${secret.length} chars)`);
  }
  console.log(
    `log audit: ${lines.length} log lines of ${audit.logs.length} servers searched for ${audit.secrets.size} tokens and passwords: ${leaked.length} found`,
  );
  expect(leaked).toEqual([]);
});
