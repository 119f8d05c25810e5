// Picks the user store by DATABASE_URL: postgres:// or postgresql:// → PostgreSQL, sqlite:// →
// the embedded SQLite file. Resolves once the store is ready (migrations applied).
import { PostgresUserStore } from "./postgres.ts";
import { SqliteUserStore } from "./sqlite.ts";
import type { UserStore } from "./store.ts";

export const isPostgresUrl = (url: string): boolean => /^postgres(ql)?:\/\//.test(url);

/** Rejects with StoreUnavailableError when a PostgreSQL server cannot be reached. */
export async function openUserStore(url: string): Promise<UserStore> {
  if (isPostgresUrl(url)) return PostgresUserStore.open(url);
  return new SqliteUserStore(url);
}
