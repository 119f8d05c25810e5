// Users for the one-socket-per-user shapes, made straight in the SQLite file Kabar will open
// (one transaction, one argon2id hash shared by every row: ~0.1 s for 20k rows, where 20k users
// through the REST API would cost ~0.1 s of argon2 each), and their access tokens, signed here
// with the server's SECRET_KEY exactly as Kabar signs them (HS256, the header and claims of a
// token Kabar issued, with another `sub`). Run it while no Kabar has the file open.
import { Database } from "bun:sqlite";
import { createHmac } from "node:crypto";

const b64url = (s: string) => Buffer.from(s).toString("base64url");

/** A token like `model` (one Kabar issued: same header, same claims) for user `sub`. */
export function signLike(model: string, sub: string, secret: string): string {
  const [header, payload] = model.split(".");
  if (!header || !payload) throw new Error("model token is not a JWT");
  const claims = JSON.parse(Buffer.from(payload, "base64url").toString("utf8")) as Record<
    string,
    unknown
  >;
  const input = `${header}.${b64url(JSON.stringify({ ...claims, sub }))}`;
  return `${input}.${createHmac("sha256", secret).update(input).digest("base64url")}`;
}

/**
 * Inserts one active, non-superuser row per email into Kabar's `users` table (the columns of
 * src/users/sqlite.ts) in one transaction; returns their ids, in order. Throws if the table
 * does not look like Kabar's (the bench then fails loudly rather than measure nothing).
 */
export async function insertUsers(
  dbPath: string,
  emails: string[],
  password: string,
): Promise<string[]> {
  const hash = await Bun.password.hash(password, { algorithm: "argon2id" });
  const db = new Database(dbPath, { strict: true });
  try {
    db.exec("PRAGMA busy_timeout = 5000");
    const insert = db.query(
      "INSERT INTO users (id, email, hashed_password, full_name, is_active, is_superuser, created_at) VALUES (?, ?, ?, ?, 1, 0, ?)",
    );
    const ids = emails.map(() => crypto.randomUUID());
    const now = new Date().toISOString();
    db.transaction(() => {
      emails.forEach((email, k) => {
        insert.run(ids[k] as string, email.toLowerCase(), hash, "bench", now);
      });
    })();
    const { n } = db.query("SELECT count(*) AS n FROM users WHERE full_name = 'bench'").get() as {
      n: number;
    };
    if (n < emails.length) throw new Error(`inserted ${n} of ${emails.length} bench users`);
    return ids;
  } finally {
    db.close();
  }
}
