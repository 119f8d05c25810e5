// PostgreSQL for tests: the machine's server (127.0.0.1:5432, trust auth, user postgres, db
// `test`; KABAR_TEST_POSTGRES_URL overrides), a fresh database per run or test
// (`kabar_test_<random>`, dropped afterwards). Where PostgreSQL is not reachable the PostgreSQL
// tests skip with one clear line, except under CI=true, where they run (and fail).
import { SQL } from "bun";

export const PG_ADMIN_URL =
  process.env.KABAR_TEST_POSTGRES_URL ?? "postgres://postgres@127.0.0.1:5432/test";

const dbName = (url: string) => decodeURIComponent(new URL(url).pathname.slice(1)) || "postgres";

/** A short-lived client; `database` is explicit so that PGDATABASE cannot redirect it. */
export const pgClient = (url: string): SQL =>
  new SQL(url, { database: dbName(url), max: 1, connectionTimeout: 5 });

let probe: Promise<string | undefined> | undefined;

/** Undefined when PostgreSQL answers, else why not. */
function unreachable(): Promise<string | undefined> {
  probe ??= (async () => {
    const sql = new SQL(PG_ADMIN_URL, {
      database: dbName(PG_ADMIN_URL),
      max: 1,
      connectionTimeout: 3,
    });
    try {
      await sql`SELECT 1`;
      return undefined;
    } catch (e) {
      return e instanceof Error ? e.message : String(e);
    } finally {
      await sql.close({ timeout: 0 }).catch(() => {});
    }
  })();
  return probe;
}

/** True when the test PostgreSQL answers. */
export async function pgAvailable(): Promise<boolean> {
  return (await unreachable()) === undefined;
}

/**
 * Whether the PostgreSQL tests should run: yes when PostgreSQL answers, and under CI=true even
 * when it does not (so they fail rather than pass by skipping). Prints one line when skipping.
 */
export async function pgTestsRun(): Promise<boolean> {
  const why = await unreachable();
  if (why === undefined) return true;
  const where = PG_ADMIN_URL.replace(/\/\/[^@/]*@/, "//");
  if (process.env.CI === "true") {
    console.error(
      `PostgreSQL not reachable at ${where} (${why}); CI=true: the PostgreSQL tests run and fail`,
    );
    return true;
  }
  console.warn(
    `skip: PostgreSQL not reachable at ${where} (${why}); the PostgreSQL tests are skipped (CI=true makes them fail)`,
  );
  return false;
}

export interface TestDatabase {
  /** postgres://…/kabar_test_<random> */
  url: string;
  name: string;
  /** Drops the database (closing whatever is still connected to it). */
  drop(): Promise<void>;
}

/** A new, empty database on the test server. */
export async function freshDatabase(): Promise<TestDatabase> {
  const name = `kabar_test_${crypto.randomUUID().replaceAll("-", "").slice(0, 16)}`;
  const admin = pgClient(PG_ADMIN_URL);
  try {
    await admin.unsafe(`CREATE DATABASE ${name}`);
  } finally {
    await admin.close({ timeout: 1 });
  }
  const url = new URL(PG_ADMIN_URL);
  url.pathname = `/${name}`;
  let dropped = false;
  return {
    url: url.toString(),
    name,
    async drop() {
      if (dropped) return;
      dropped = true;
      const sql = pgClient(PG_ADMIN_URL);
      try {
        await sql.unsafe(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      } finally {
        await sql.close({ timeout: 1 });
      }
    },
  };
}

/** The same URL, pointed at another port on 127.0.0.1 (a proxy in front of the server). */
export function viaPort(url: string, port: number): string {
  const u = new URL(url);
  u.hostname = "127.0.0.1";
  u.port = String(port);
  return u.toString();
}

/** Host and port of a PostgreSQL URL. */
export function pgAddress(url: string): { hostname: string; port: number } {
  const u = new URL(url);
  return { hostname: u.hostname || "127.0.0.1", port: Number(u.port || 5432) };
}
