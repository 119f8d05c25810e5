// Runs the UserStore contract against every implementation (SQLite, PostgreSQL), plus the
// specifics of each: SQLite's file and WAL mode, PostgreSQL's migrations, conversions and what
// happens when its connections are cut.
import { Database } from "bun:sqlite";
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { SQL } from "bun";
import { PostgresUserStore } from "../src/users/postgres.ts";
import { SqliteUserStore } from "../src/users/sqlite.ts";
import { publicUser, StoreUnavailableError } from "../src/users/store.ts";
import { userStoreContract } from "./contract/user-store.ts";
import { freePort } from "./helpers.ts";
import {
  freshDatabase,
  PG_ADMIN_URL,
  pgAddress,
  pgClient,
  pgTestsRun,
  type TestDatabase,
  viaPort,
} from "./postgres.ts";
import { tcpProxy } from "./tcp-proxy.ts";

const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});
const tempDir = () => {
  const d = mkdtempSync(join(tmpdir(), "kabar-sqlite-"));
  dirs.push(d);
  return d;
};

userStoreContract("sqlite", async () => {
  const url = `sqlite://${join(tempDir(), "users.db")}`;
  return { open: async () => new SqliteUserStore(url) };
});

test("sqlite file: WAL mode, migrations recorded, data survives reopen", async () => {
  const dir = tempDir();
  const url = `sqlite://${join(dir, "nested", "users.db")}`;
  const a = new SqliteUserStore(url);
  const u = await a.create({ email: "keep@example.com", hashed_password: "h" });
  await a.close();
  const b = new SqliteUserStore(url);
  expect(await b.getById(u.id)).toEqual(publicUser(u));
  await b.close();
  const db = new Database(join(dir, "nested", "users.db"));
  expect(db.query("PRAGMA journal_mode").get()).toEqual({ journal_mode: "wal" });
  expect(db.query("PRAGMA user_version").get()).toEqual({ user_version: 1 });
  db.close();
});

const PG = await pgTestsRun();

describe.if(PG)("PostgreSQL", () => {
  /** One database for this run; each contract test starts from empty tables. */
  let db: TestDatabase | undefined;
  let admin: SQL | undefined;
  const url = () => (db as TestDatabase).url;
  const sql = () => admin as SQL;
  beforeAll(async () => {
    db = await freshDatabase();
    admin = pgClient(db.url);
  });
  afterAll(async () => {
    await admin?.close({ timeout: 1 });
    await db?.drop();
  });
  const empty = async () => {
    await sql()`DROP TABLE IF EXISTS users, kabar_schema`;
  };

  userStoreContract("postgres", async () => {
    await empty();
    return { open: () => PostgresUserStore.open(url()) };
  });

  test("migrations: recorded in kabar_schema, once, even when nodes open together", async () => {
    await empty();
    const stores = await Promise.all([1, 2, 3].map(() => PostgresUserStore.open(url())));
    const u = await (stores[0] as PostgresUserStore).create({
      email: "keep@example.com",
      hashed_password: "h",
    });
    for (const s of stores) await s.close();
    expect(await sql()`SELECT version FROM kabar_schema`).toEqual([{ version: 1 }]);
    const again = await PostgresUserStore.open(`${url().replace(/^postgres:/, "postgresql:")}`);
    expect(await again.getById(u.id)).toEqual(publicUser(u));
    await again.close();
    expect(await sql()`SELECT version FROM kabar_schema`).toEqual([{ version: 1 }]);
    const [index] =
      await sql()`SELECT indexdef FROM pg_indexes WHERE indexname = 'users_email_key'`;
    expect(String(index?.indexdef)).toContain("UNIQUE INDEX");
    expect(String(index?.indexdef)).toContain("lower(email)");
  });

  test("conversions: count is a number, times are ISO strings, odd ids are unknown", async () => {
    await empty();
    const s = await PostgresUserStore.open(url());
    try {
      const u = await s.create({
        email: "n@example.com",
        hashed_password: "h",
        is_superuser: true,
      });
      expect(u.created_at).toBe(new Date(u.created_at).toISOString());
      expect(u.is_superuser).toBe(true);
      const page = await s.list(0, 10);
      expect(page.count).toBe(1);
      expect(typeof page.count).toBe("number");
      expect(await s.list(Number.MAX_SAFE_INTEGER, 1000)).toEqual({ data: [], count: 1 });
      expect(await s.getById("not-a-uuid")).toBeUndefined();
      expect(await s.update("not-a-uuid", { is_active: false })).toBeUndefined();
      expect(await s.delete("not-a-uuid")).toBe(false);
      expect(await s.getByEmail("N@EXAMPLE.COM")).toEqual(u);
    } finally {
      await s.close();
    }
  });

  test("unreachable at open: StoreUnavailableError naming host and port, no password", async () => {
    const port = await freePort();
    const bad = viaPort(PG_ADMIN_URL.replace("//postgres@", "//postgres:sekrit@"), port);
    const started = Date.now();
    const error = await PostgresUserStore.open(bad).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(StoreUnavailableError);
    const message = (error as Error).message;
    expect(message).toContain(`127.0.0.1:${port}`);
    expect(message).not.toContain("sekrit");
    expect(message).not.toContain("\n");
    expect(Date.now() - started).toBeLessThan(6000);
  });

  test("connections cut: StoreUnavailableError, memory still answers, back without reopen", async () => {
    await empty();
    const proxy = tcpProxy(pgAddress(url()));
    const s = await PostgresUserStore.open(viaPort(url(), proxy.port));
    try {
      const known = await s.create({ email: "known@example.com", hashed_password: "h" });
      const other = await s.create({ email: "other@example.com", hashed_password: "h" });
      expect(await s.getById(known.id)).toEqual(publicUser(known));
      proxy.cut();
      for (const attempt of [
        () => s.getById(other.id),
        () => s.getByEmail("other@example.com"),
        () => s.list(0, 10),
        () => s.create({ email: "new@example.com", hashed_password: "h" }),
        () => s.update(other.id, { full_name: "x" }),
        () => s.delete(other.id),
      ]) {
        const started = Date.now();
        await expect(attempt()).rejects.toBeInstanceOf(StoreUnavailableError);
        expect(Date.now() - started).toBeLessThan(2000);
      }
      // The cached user still answers (nobody can change it while the database is down).
      expect(s.getCached(known.id)).toEqual(publicUser(known));
      expect(await s.getById(known.id)).toEqual(publicUser(known));
      proxy.restore();
      expect((await s.getById(other.id))?.email).toBe("other@example.com");
      expect((await s.list(0, 10)).count).toBe(2);
      const fresh = await s.create({ email: "new@example.com", hashed_password: "h" });
      expect(await s.getByEmail("new@example.com")).toEqual(fresh);
      // A cut while connections sit idle in the pool, then back at once: reads still succeed.
      proxy.cut();
      proxy.restore();
      expect((await s.getByEmail("known@example.com"))?.id).toBe(known.id);
    } finally {
      await s.close();
      proxy.stop();
    }
  });
});
