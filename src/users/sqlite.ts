// Users in embedded SQLite (bun:sqlite, WAL). Migrations are applied at open.
import { Database, type Statement } from "bun:sqlite";
import { mkdirSync } from "node:fs";
import { dirname, isAbsolute, resolve } from "node:path";
import {
  EmailTakenError,
  type NewUser,
  publicUser,
  type User,
  type UserPatch,
  type UserRecord,
  type UserStore,
} from "./store.ts";

/** Ordered migrations; `PRAGMA user_version` records how many ran. Append, never edit. */
const MIGRATIONS: readonly string[] = [
  `CREATE TABLE users (
     id TEXT PRIMARY KEY,
     email TEXT NOT NULL COLLATE NOCASE UNIQUE,
     hashed_password TEXT NOT NULL,
     full_name TEXT,
     is_active INTEGER NOT NULL DEFAULT 1,
     is_superuser INTEGER NOT NULL DEFAULT 0,
     created_at TEXT NOT NULL
   )`,
];

interface Row {
  id: string;
  email: string;
  hashed_password: string;
  full_name: string | null;
  is_active: number;
  is_superuser: number;
  created_at: string;
}

const toRecord = (r: Row): UserRecord => ({
  id: r.id,
  email: r.email,
  hashed_password: r.hashed_password,
  full_name: r.full_name,
  is_active: r.is_active === 1,
  is_superuser: r.is_superuser === 1,
  created_at: r.created_at,
});

/** `sqlite://relative/path.db`, `sqlite:///absolute/path.db` or `sqlite://:memory:`. */
export function sqlitePath(url: string): string {
  const rest = url.slice("sqlite://".length);
  if (rest === ":memory:") return rest;
  return isAbsolute(rest) ? rest : resolve(rest);
}

const isUniqueViolation = (e: unknown) =>
  e instanceof Error && /UNIQUE constraint failed/.test(e.message);

/** Records kept in memory by id: a lookup runs on every WebSocket upgrade (~6-20 µs in SQLite). */
const CACHE_SIZE = 10_000;

export class SqliteUserStore implements UserStore {
  private readonly db: Database;
  /**
   * Users by id. Changes made through this store (update/delete below) keep it in step; another
   * process writing the same file (nodes on one machine) must be followed with `forget(id)`.
   */
  private readonly cache = new Map<string, User>();
  private readonly byId: Statement<Row, [string]>;
  private readonly byEmail: Statement<Row, [string]>;
  private readonly page: Statement<Row, [number, number]>;
  private readonly total: Statement<{ n: number }, []>;
  private readonly insert: Statement<
    Row,
    [string, string, string, string | null, number, number, string]
  >;
  private readonly remove: Statement<Row, [string]>;

  constructor(url: string) {
    const path = sqlitePath(url);
    if (path !== ":memory:") mkdirSync(dirname(path), { recursive: true });
    this.db = new Database(path, { create: true, strict: true });
    this.db.exec(
      "PRAGMA journal_mode = WAL; PRAGMA busy_timeout = 5000; PRAGMA synchronous = NORMAL",
    );
    this.migrate();
    this.byId = this.db.query("SELECT * FROM users WHERE id = ?");
    this.byEmail = this.db.query("SELECT * FROM users WHERE email = ?");
    this.page = this.db.query("SELECT * FROM users ORDER BY created_at, rowid LIMIT ? OFFSET ?");
    this.total = this.db.query("SELECT count(*) AS n FROM users");
    this.insert = this.db.query(
      "INSERT INTO users (id, email, hashed_password, full_name, is_active, is_superuser, created_at) VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING *",
    );
    this.remove = this.db.query("DELETE FROM users WHERE id = ? RETURNING *");
  }

  private migrate(): void {
    const { user_version: version } = this.db.query("PRAGMA user_version").get() as {
      user_version: number;
    };
    if (version >= MIGRATIONS.length) return;
    this.db.transaction(() => {
      for (let i = version; i < MIGRATIONS.length; i++) this.db.exec(MIGRATIONS[i] as string);
      this.db.exec(`PRAGMA user_version = ${MIGRATIONS.length}`);
    })();
  }

  sizes(): Record<string, number> {
    return { cached_users: this.cache.size };
  }

  getCached(id: string): User | undefined {
    return this.cache.get(id);
  }

  forget(id: string): void {
    this.cache.delete(id);
  }

  async getById(id: string): Promise<User | undefined> {
    const cached = this.cache.get(id);
    if (cached !== undefined) return cached;
    const row = this.byId.get(id);
    if (!row) return undefined;
    return this.remember(toRecord(row));
  }

  /** Keeps the user, without its hash, in the cache; returns what it kept. */
  private remember(record: UserRecord): User {
    const user = publicUser(record);
    if (this.cache.size >= CACHE_SIZE) {
      const oldest = this.cache.keys().next().value;
      if (oldest !== undefined) this.cache.delete(oldest);
    }
    this.cache.set(user.id, user);
    return user;
  }

  async getByEmail(email: string): Promise<UserRecord | undefined> {
    const row = this.byEmail.get(email.toLowerCase());
    return row ? toRecord(row) : undefined;
  }

  async list(skip: number, limit: number): Promise<{ data: User[]; count: number }> {
    const rows = this.page.all(limit, skip);
    const data = rows.map((r) => {
      const { hashed_password: _, ...user } = toRecord(r);
      return user;
    });
    return { data, count: this.total.get()?.n ?? 0 };
  }

  async create(u: NewUser): Promise<UserRecord> {
    try {
      const row = this.insert.get(
        crypto.randomUUID(),
        u.email.toLowerCase(),
        u.hashed_password,
        u.full_name ?? null,
        u.is_active === false ? 0 : 1,
        u.is_superuser ? 1 : 0,
        new Date().toISOString(),
      );
      if (!row) throw new Error("insert returned no row");
      return toRecord(row);
    } catch (e) {
      if (isUniqueViolation(e)) throw new EmailTakenError();
      throw e;
    }
  }

  async update(id: string, patch: UserPatch): Promise<UserRecord | undefined> {
    const sets: string[] = [];
    const values: (string | number | null)[] = [];
    const put = (column: string, value: string | number | null) => {
      sets.push(`${column} = ?`);
      values.push(value);
    };
    if (patch.email !== undefined) put("email", patch.email.toLowerCase());
    if (patch.hashed_password !== undefined) put("hashed_password", patch.hashed_password);
    if (patch.full_name !== undefined) put("full_name", patch.full_name);
    if (patch.is_active !== undefined) put("is_active", patch.is_active ? 1 : 0);
    if (patch.is_superuser !== undefined) put("is_superuser", patch.is_superuser ? 1 : 0);
    if (sets.length === 0) {
      const row = this.byId.get(id);
      return row ? toRecord(row) : undefined;
    }
    this.cache.delete(id);
    try {
      const row = this.db
        .query<Row, (string | number | null)[]>(
          `UPDATE users SET ${sets.join(", ")} WHERE id = ? RETURNING *`,
        )
        .get(...values, id);
      return row ? toRecord(row) : undefined;
    } catch (e) {
      if (isUniqueViolation(e)) throw new EmailTakenError();
      throw e;
    }
  }

  async delete(id: string): Promise<boolean> {
    this.cache.delete(id);
    return this.remove.get(id) !== null;
  }

  async close(): Promise<void> {
    this.cache.clear();
    this.db.close();
  }
}
