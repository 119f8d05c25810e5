// Users in PostgreSQL (Bun's built-in `SQL` client), one database shared by every node of a
// cluster. Same data and behaviour as the SQLite store: migrations are applied at open (once per
// database, even when several nodes start together), emails are stored lower-cased and unique
// case-insensitively. Connection failures surface as StoreUnavailableError; the pool opens new
// connections by itself once the server is back, so nothing needs a restart.
import { SQL } from "bun";
import {
  EmailTakenError,
  type NewUser,
  publicUser,
  StoreUnavailableError,
  type User,
  type UserPatch,
  type UserRecord,
  type UserStore,
} from "./store.ts";

/**
 * Ordered migrations; `kabar_schema.version` records how many ran (SQLite's `user_version`).
 * Append, never edit. Each entry may hold several statements.
 */
const MIGRATIONS: readonly string[] = [
  `CREATE TABLE users (
     id uuid PRIMARY KEY,
     email text NOT NULL,
     hashed_password text NOT NULL,
     full_name text,
     is_active boolean NOT NULL DEFAULT true,
     is_superuser boolean NOT NULL DEFAULT false,
     created_at timestamptz NOT NULL,
     seq bigint GENERATED ALWAYS AS IDENTITY
   );
   CREATE UNIQUE INDEX users_email_key ON users (lower(email));
   CREATE INDEX users_created_order ON users (created_at, seq);`,
];

/** Serialises migrations between nodes that open the same database at the same moment. */
const MIGRATION_LOCK = 0x6b61626172; // "kabar"

/** Seconds to wait for a new connection before the operation counts as unavailable. */
const CONNECT_TIMEOUT_SECONDS = 5;
/** An operation that has no answer after this long (a silent network) counts as unavailable. */
const OPERATION_TIMEOUT_MS = 10_000;

/** How often a read is tried again after meeting a pooled connection that had died. */
const READ_RETRIES = 2;

/** Records kept in memory by id: a lookup runs on every WebSocket upgrade. */
const CACHE_SIZE = 10_000;

const RECORD = "id, email, hashed_password, full_name, is_active, is_superuser, created_at";
const PUBLIC = "id, email, full_name, is_active, is_superuser, created_at";
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

interface PublicRow {
  id: string;
  email: string;
  full_name: string | null;
  is_active: boolean;
  is_superuser: boolean;
  created_at: Date;
}

interface Row extends PublicRow {
  hashed_password: string;
}

const toUser = (r: PublicRow): User => ({
  id: r.id,
  email: r.email,
  full_name: r.full_name,
  is_active: r.is_active,
  is_superuser: r.is_superuser,
  created_at: r.created_at.toISOString(),
});

const toRecord = (r: Row): UserRecord => ({ ...toUser(r), hashed_password: r.hashed_password });

/** Bun's own codes for a connection that failed, closed or timed out. */
const CONNECTION_CODES = new Set([
  "ERR_POSTGRES_CONNECTION_CLOSED",
  "ERR_POSTGRES_CONNECTION_REFUSED",
  "ERR_POSTGRES_CONNECTION_FAILED",
  "ERR_POSTGRES_CONNECTION_TIMEOUT",
  "ERR_POSTGRES_IDLE_TIMEOUT",
  "ERR_POSTGRES_LIFETIME_TIMEOUT",
  "ERR_POSTGRES_TLS_UPGRADE_FAILED",
  "ECONNREFUSED",
  "ECONNRESET",
  "ETIMEDOUT",
  "EPIPE",
  "ENOTFOUND",
  "EAI_AGAIN",
  "EHOSTUNREACH",
  "ENETUNREACH",
]);

const codeOf = (e: unknown): string | undefined => {
  const code = (e as { code?: unknown } | null)?.code;
  return typeof code === "string" ? code : undefined;
};

/** The server's SQLSTATE, when the error came from the server. */
const sqlState = (e: unknown): string | undefined =>
  e instanceof SQL.PostgresError ? e.errno : undefined;

/**
 * True when the error means "no working connection to the database right now": a client-side
 * connection failure, or the server saying so (08 connection exception, 28 login refused,
 * 3D000 no such database, 53 out of resources such as too many connections, 57P0x shutting down
 * or starting up).
 */
export function isConnectionError(e: unknown): boolean {
  const code = codeOf(e);
  if (code !== undefined && CONNECTION_CODES.has(code)) return true;
  const state = sqlState(e);
  if (state === undefined) return false;
  return /^(08|28|53|57P0)/.test(state) || state === "3D000";
}

const isUniqueViolation = (e: unknown) => sqlState(e) === "23505";

const describeError = (e: unknown): string => {
  const message = e instanceof Error ? e.message : String(e);
  const code = codeOf(e);
  return code !== undefined && code !== "ERR_POSTGRES_SERVER_ERROR"
    ? `${message} (${code})`
    : message;
};

/** `host:port/database` of a PostgreSQL URL, never its user or password. */
export function postgresTarget(url: string): string {
  try {
    const u = new URL(url);
    return `${u.hostname || "localhost"}:${u.port || "5432"}${u.pathname || "/"}`;
  } catch {
    return "(unparsable URL)";
  }
}

type Kind = "read" | "write";

export class PostgresUserStore implements UserStore {
  private readonly sql: SQL;
  private readonly target: string;
  /** Users by id; see getCached/forget for what keeps it in step. */
  private readonly cache = new Map<string, User>();
  /**
   * Bumped by every forget: a read that started before a bump does not fill the cache, so a row
   * read just before another change cannot be cached after it.
   */
  private generation = 0;

  private constructor(url: string) {
    this.target = postgresTarget(url);
    const database = decodeURIComponent(new URL(url).pathname.slice(1));
    this.sql = new SQL(url, {
      connectionTimeout: CONNECT_TIMEOUT_SECONDS,
      // PGDATABASE would otherwise win over the database named in the URL.
      ...(database ? { database } : {}),
    });
  }

  /**
   * Connects and applies the migrations. Rejects with StoreUnavailableError (one line, no
   * credentials) when the server cannot be reached, and closes the pool on any failure.
   */
  static async open(url: string): Promise<PostgresUserStore> {
    const store = new PostgresUserStore(url);
    try {
      await store.timed(store.migrate());
      return store;
    } catch (e) {
      await store.sql.close({ timeout: 0 }).catch(() => {});
      if (e instanceof StoreUnavailableError) throw e;
      if (isConnectionError(e))
        throw new StoreUnavailableError(
          `cannot reach PostgreSQL at ${store.target}: ${describeError(e)}`,
          { cause: e },
        );
      throw new Error(`PostgreSQL at ${store.target}: migrations failed: ${describeError(e)}`, {
        cause: e,
      });
    }
  }

  private async migrate(): Promise<void> {
    await this.sql.begin(async (tx) => {
      await tx`SELECT pg_advisory_xact_lock(${MIGRATION_LOCK})`;
      await tx`CREATE TABLE IF NOT EXISTS kabar_schema (version integer NOT NULL)`;
      const rows = await tx<{ version: number }[]>`SELECT version FROM kabar_schema`;
      let version = rows[0]?.version;
      if (version === undefined) {
        await tx`INSERT INTO kabar_schema (version) VALUES (0)`;
        version = 0;
      }
      if (version >= MIGRATIONS.length) return;
      for (let i = version; i < MIGRATIONS.length; i++)
        await tx.unsafe(MIGRATIONS[i] as string).simple();
      await tx`UPDATE kabar_schema SET version = ${MIGRATIONS.length}`;
    });
  }

  /** The promise, or StoreUnavailableError when it has not settled in OPERATION_TIMEOUT_MS. */
  private timed<T>(work: Promise<T>): Promise<T> {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () =>
          reject(
            new StoreUnavailableError(
              `PostgreSQL at ${this.target} did not answer within ${OPERATION_TIMEOUT_MS} ms`,
            ),
          ),
        OPERATION_TIMEOUT_MS,
      );
    });
    return Promise.race([work, timeout]).finally(() => clearTimeout(timer));
  }

  /**
   * Runs one operation; connection failures become StoreUnavailableError. A read that meets a
   * pooled connection which died unnoticed (the server restarted) is tried again, on another
   * connection; a write is not, since it may have been applied.
   */
  private async run<T>(kind: Kind, op: () => Promise<T>): Promise<T> {
    for (let attempt = 0; ; attempt++) {
      try {
        return await this.timed(op());
      } catch (e) {
        if (e instanceof StoreUnavailableError || !isConnectionError(e)) throw e;
        if (
          kind === "read" &&
          attempt < READ_RETRIES &&
          codeOf(e) === "ERR_POSTGRES_CONNECTION_CLOSED"
        ) {
          // Let the pool see its other closed connections before it picks one again.
          await new Promise((resolve) => setImmediate(resolve));
          continue;
        }
        throw new StoreUnavailableError(
          `PostgreSQL at ${this.target} is unavailable: ${describeError(e)}`,
          { cause: e },
        );
      }
    }
  }

  sizes(): Record<string, number> {
    return { cached_users: this.cache.size };
  }

  /**
   * From memory. Kept in step with changes made through this store; changes made by another node
   * are seen after `forget(id)` (in cluster mode the node that made the change announces it).
   */
  getCached(id: string): User | undefined {
    return this.cache.get(id);
  }

  forget(id: string): void {
    this.generation++;
    this.cache.delete(id);
  }

  /** Keeps the user, without its hash, in the cache (unless forgotten since); returns it. */
  private remember(record: UserRecord, generation: number): User {
    const user = publicUser(record);
    if (generation !== this.generation) return user;
    if (this.cache.size >= CACHE_SIZE) {
      const oldest = this.cache.keys().next().value;
      if (oldest !== undefined) this.cache.delete(oldest);
    }
    this.cache.set(user.id, user);
    return user;
  }

  async getById(id: string): Promise<User | undefined> {
    const cached = this.cache.get(id);
    if (cached !== undefined) return cached;
    if (!UUID.test(id)) return undefined;
    const generation = this.generation;
    const record = await this.readById(id);
    return record ? this.remember(record, generation) : undefined;
  }

  /** The whole row of a user (its hash too), from the database; never cached. */
  private async readById(id: string): Promise<UserRecord | undefined> {
    const rows = await this.run(
      "read",
      () => this.sql<Row[]>`SELECT ${this.sql.unsafe(RECORD)} FROM users WHERE id = ${id}`,
    );
    return rows[0] ? toRecord(rows[0]) : undefined;
  }

  async getByEmail(email: string): Promise<UserRecord | undefined> {
    const rows = await this.run(
      "read",
      () =>
        this.sql<Row[]>`SELECT ${this.sql.unsafe(RECORD)} FROM users
                        WHERE lower(email) = lower(${email.toLowerCase()})`,
    );
    const row = rows[0];
    return row ? toRecord(row) : undefined;
  }

  async list(skip: number, limit: number): Promise<{ data: User[]; count: number }> {
    const [rows, total] = await this.run("read", () =>
      Promise.all([
        this.sql<PublicRow[]>`SELECT ${this.sql.unsafe(PUBLIC)} FROM users
                              ORDER BY created_at, seq LIMIT ${limit} OFFSET ${skip}`,
        // count(*) is a bigint: Bun hands it over as a string.
        this.sql<{ n: string }[]>`SELECT count(*) AS n FROM users`,
      ]),
    );
    return { data: rows.map(toUser), count: Number(total[0]?.n ?? 0) };
  }

  async create(u: NewUser): Promise<UserRecord> {
    try {
      const rows = await this.run(
        "write",
        () =>
          this.sql<Row[]>`INSERT INTO users
              (id, email, hashed_password, full_name, is_active, is_superuser, created_at)
            VALUES (${crypto.randomUUID()}, ${u.email.toLowerCase()}, ${u.hashed_password},
              ${u.full_name ?? null}, ${u.is_active !== false}, ${u.is_superuser === true},
              ${new Date()})
            RETURNING ${this.sql.unsafe(RECORD)}`,
      );
      const row = rows[0];
      if (!row) throw new Error("insert returned no row");
      return toRecord(row);
    } catch (e) {
      if (isUniqueViolation(e)) throw new EmailTakenError();
      throw e;
    }
  }

  async update(id: string, patch: UserPatch): Promise<UserRecord | undefined> {
    const set: Record<string, string | boolean | null> = {};
    if (patch.email !== undefined) set.email = patch.email.toLowerCase();
    if (patch.hashed_password !== undefined) set.hashed_password = patch.hashed_password;
    if (patch.full_name !== undefined) set.full_name = patch.full_name;
    if (patch.is_active !== undefined) set.is_active = patch.is_active;
    if (patch.is_superuser !== undefined) set.is_superuser = patch.is_superuser;
    if (!UUID.test(id)) return undefined;
    if (Object.keys(set).length === 0) return this.readById(id);
    this.forget(id);
    try {
      const rows = await this.run(
        "write",
        () =>
          this.sql<Row[]>`UPDATE users SET ${this.sql(set)} WHERE id = ${id}
                          RETURNING ${this.sql.unsafe(RECORD)}`,
      );
      const row = rows[0];
      return row ? toRecord(row) : undefined;
    } catch (e) {
      if (isUniqueViolation(e)) throw new EmailTakenError();
      throw e;
    } finally {
      // A read that ran while the update was in flight may have seen the old row.
      this.forget(id);
    }
  }

  async delete(id: string): Promise<boolean> {
    if (!UUID.test(id)) return false;
    this.forget(id);
    try {
      const rows = await this.run(
        "write",
        () => this.sql<{ id: string }[]>`DELETE FROM users WHERE id = ${id} RETURNING id`,
      );
      return rows.length > 0;
    } finally {
      this.forget(id);
    }
  }

  async close(): Promise<void> {
    this.cache.clear();
    await this.sql.close({ timeout: 1 });
  }
}
