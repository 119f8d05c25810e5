// Runs the UserStore contract against every implementation, plus SQLite specifics.
import { Database } from "bun:sqlite";
import { expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { SqliteUserStore } from "../src/users/sqlite.ts";
import { userStoreContract } from "./contract/user-store.ts";

userStoreContract("sqlite :memory:", async () => new SqliteUserStore("sqlite://:memory:"));

test("sqlite file: WAL mode, migrations recorded, data survives reopen", async () => {
  const dir = mkdtempSync(join(tmpdir(), "kabar-sqlite-"));
  try {
    const url = `sqlite://${join(dir, "nested", "users.db")}`;
    const a = new SqliteUserStore(url);
    const u = await a.create({ email: "keep@example.com", hashed_password: "h" });
    a.close();
    const b = new SqliteUserStore(url);
    expect(await b.getById(u.id)).toEqual(u);
    b.close();
    const db = new Database(join(dir, "nested", "users.db"));
    expect(db.query("PRAGMA journal_mode").get()).toEqual({ journal_mode: "wal" });
    expect(db.query("PRAGMA user_version").get()).toEqual({ user_version: 1 });
    db.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
