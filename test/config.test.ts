// Settings: loadConfig() defaults and refusals, helpText(), and the local secret kept in DATA_DIR.
import { afterAll, describe, expect, test } from "bun:test";
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import {
  type Config,
  ConfigError,
  ensureLocalSecret,
  helpText,
  isWeakSecret,
  loadConfig,
  SETTINGS,
} from "../src/config.ts";
import { checkListing } from "./spec-settings.ts";

const STRONG = "s".repeat(32);
const SUPER_PASSWORD = "a-strong-admin-password";

/** Runs `fn`, expects a ConfigError, and returns its message. */
function refused(env: Record<string, string>): string {
  let caught: unknown;
  try {
    loadConfig(env);
  } catch (e) {
    caught = e;
  }
  expect(caught).toBeInstanceOf(ConfigError);
  return (caught as ConfigError).message;
}

/** A ConfigError message is one line that starts with `NAME:`. */
function expectOneLine(message: string, name: string): void {
  expect(message.startsWith(`${name}:`)).toBe(true);
  expect(message).not.toMatch(/[\r\n]/);
}

describe("defaults (spec, Settings)", () => {
  const c = loadConfig({});

  test("network and tokens", () => {
    expect(c.port).toBe(8000);
    expect(c.host).toBe("0.0.0.0");
    expect(c.environment).toBe("local");
    expect(c.accessTokenExpireMinutes).toBe(11520);
    expect(c.logLevel).toBe("info");
    expect(c.botEnabled).toBe(true);
    expect(c.corsOrigins).toEqual([]);
    expect(c.redisUrl).toBeUndefined();
    expect(c.firstSuperuser).toBe("admin@example.com");
  });

  test("rate limit and rooms", () => {
    expect(c.rateLimitCapacity).toBe(100);
    expect(c.rateLimitRefillPerSecond).toBe(100 / 60);
    expect(c.roomEmptyTtlSeconds).toBe(300);
  });

  test("limits", () => {
    expect(c.wsMaxPayloadBytes).toBe(65536);
    expect(c.wsIdleTimeoutSeconds).toBe(60);
    expect(c.wsBackpressureLimitBytes).toBe(1048576);
    expect(c.maxConnectionsPerUser).toBe(20);
    expect(c.maxRooms).toBe(10000);
    expect(c.maxRoomsPerUser).toBe(50);
  });

  test("data under ./data: an SQLite file, no secret yet", () => {
    expect(c.dataDir).toBe(resolve("./data"));
    expect(c.databaseUrl).toBe(`sqlite://${join(resolve("./data"), "kabar.db")}`);
    expect(c.secretKey).toBe("");
  });

  test("empty values count as unset", () => {
    const e = loadConfig({ PORT: "", HOST: "", BOT_ENABLED: "", LOG_LEVEL: "" });
    expect(e.port).toBe(8000);
    expect(e.host).toBe("0.0.0.0");
    expect(e.botEnabled).toBe(true);
    expect(e.logLevel).toBe("info");
  });

  test("USERS_OPEN_REGISTRATION is true only in local", () => {
    expect(loadConfig({}).usersOpenRegistration).toBe(true);
    for (const environment of ["staging", "production"]) {
      const prod = loadConfig({
        ENVIRONMENT: environment,
        SECRET_KEY: STRONG,
        FIRST_SUPERUSER_PASSWORD: SUPER_PASSWORD,
      });
      expect(prod.environment).toBe(environment as Config["environment"]);
      expect(prod.usersOpenRegistration).toBe(false);
    }
    expect(loadConfig({ USERS_OPEN_REGISTRATION: "false" }).usersOpenRegistration).toBe(false);
    expect(
      loadConfig({
        ENVIRONMENT: "production",
        SECRET_KEY: STRONG,
        FIRST_SUPERUSER_PASSWORD: SUPER_PASSWORD,
        USERS_OPEN_REGISTRATION: "true",
      }).usersOpenRegistration,
    ).toBe(true);
  });
});

describe("values are parsed", () => {
  test("numbers, booleans, enums", () => {
    const c = loadConfig({
      PORT: "9001",
      HOST: "127.0.0.1",
      BOT_ENABLED: "false",
      LOG_LEVEL: "debug",
      RATE_LIMIT_REFILL_PER_SECOND: "2.5",
      ROOM_EMPTY_TTL_SECONDS: "0.5",
      MAX_ROOMS: "3",
      FIRST_SUPERUSER: "Root@Example.COM",
    });
    expect(c.port).toBe(9001);
    expect(c.host).toBe("127.0.0.1");
    expect(c.botEnabled).toBe(false);
    expect(c.logLevel).toBe("debug");
    expect(c.rateLimitRefillPerSecond).toBe(2.5);
    expect(c.roomEmptyTtlSeconds).toBe(0.5);
    expect(c.maxRooms).toBe(3);
    expect(c.firstSuperuser).toBe("root@example.com");
  });

  test("booleans accept the usual spellings", () => {
    for (const v of ["1", "true", "TRUE", "yes", "on"])
      expect(loadConfig({ BOT_ENABLED: v }).botEnabled).toBe(true);
    for (const v of ["0", "false", "False", "no", "off"])
      expect(loadConfig({ BOT_ENABLED: v }).botEnabled).toBe(false);
  });

  test("BACKEND_CORS_ORIGINS: comma list", () => {
    expect(
      loadConfig({ BACKEND_CORS_ORIGINS: "http://localhost:5173, https://example.com/ ,," })
        .corsOrigins,
    ).toEqual(["http://localhost:5173", "https://example.com"]);
  });

  test("BACKEND_CORS_ORIGINS: JSON array", () => {
    expect(
      loadConfig({ BACKEND_CORS_ORIGINS: '["http://localhost:5173", "https://example.com/"]' })
        .corsOrigins,
    ).toEqual(["http://localhost:5173", "https://example.com"]);
    expect(loadConfig({ BACKEND_CORS_ORIGINS: '["*"]' }).corsOrigins).toEqual(["*"]);
  });

  test("DATA_DIR moves the default database", () => {
    const c = loadConfig({ DATA_DIR: "/srv/kabar" });
    expect(c.dataDir).toBe("/srv/kabar");
    expect(c.databaseUrl).toBe("sqlite:///srv/kabar/kabar.db");
  });

  test("DATABASE_URL: postgres:// and postgresql:// are accepted as given", () => {
    for (const url of [
      "postgres://kabar:pw@db:5432/kabar",
      "postgresql://db/kabar?sslmode=require",
    ])
      expect(loadConfig({ DATABASE_URL: url }).databaseUrl).toBe(url);
  });

  test("REDIS_URL: unset is one node; redis://, rediss:// are accepted; NODE_TTL_SECONDS 10", () => {
    expect(loadConfig({}).redisUrl).toBeUndefined();
    expect(loadConfig({}).nodeTtlSeconds).toBe(10);
    for (const url of ["redis://127.0.0.1:6379", "rediss://:pw@cache:6380/2"])
      expect(loadConfig({ REDIS_URL: url }).redisUrl).toBe(url);
    expect(loadConfig({ NODE_TTL_SECONDS: "3" }).nodeTtlSeconds).toBe(3);
  });
});

describe("bad values: ConfigError, one line starting with the variable name", () => {
  const cases: Array<[string, string]> = [
    ["PORT", "abc"],
    ["PORT", "70000"],
    ["PORT", "-1"],
    ["PORT", "80.5"],
    ["BOT_ENABLED", "maybe"],
    ["USERS_OPEN_REGISTRATION", "sometimes"],
    ["LOG_LEVEL", "loud"],
    ["ENVIRONMENT", "dev"],
    ["BACKEND_CORS_ORIGINS", "[1]"],
    ["BACKEND_CORS_ORIGINS", "[not json"],
    ["RATE_LIMIT_CAPACITY", "0"],
    ["RATE_LIMIT_REFILL_PER_SECOND", "0"],
    ["RATE_LIMIT_REFILL_PER_SECOND", "fast"],
    ["ROOM_EMPTY_TTL_SECONDS", "-5"],
    ["ACCESS_TOKEN_EXPIRE_MINUTES", "0"],
    ["WS_IDLE_TIMEOUT_SECONDS", "961"],
    ["WS_MAX_PAYLOAD_BYTES", "10"],
    ["MAX_CONNECTIONS_PER_USER", "0"],
    ["MAX_ROOMS_PER_USER", "many"],
    ["DATABASE_URL", "mysql://db/kabar"],
    ["DATABASE_URL", "postgres://user:pw@db:port/kabar"],
    ["REDIS_URL", "localhost:6379"],
    ["REDIS_URL", "http://localhost:6379"],
    ["NODE_TTL_SECONDS", "0"],
    ["FIRST_SUPERUSER_PASSWORD", "short"],
  ];
  for (const [name, value] of cases) {
    test(`${name}=${value}`, () => {
      expectOneLine(refused({ [name]: value }), name);
    });
  }

  test("in local a weak SECRET_KEY (the seed's changethis) is accepted; main warns", () => {
    expect(loadConfig({ SECRET_KEY: "changethis" }).secretKey).toBe("changethis");
    expect(isWeakSecret("changethis")).toBe(true);
    expect(isWeakSecret("k".repeat(32))).toBe(false);
  });

  test("the message says what was expected", () => {
    expect(refused({ PORT: "abc" })).toBe("PORT: expected an integer");
    expect(refused({ PORT: "70000" })).toContain("65535");
    expect(refused({ BOT_ENABLED: "maybe" })).toBe("BOT_ENABLED: expected true or false");
    expect(refused({ ENVIRONMENT: "dev" })).toContain("local, staging, production");
    expect(refused({ LOG_LEVEL: "loud" })).toContain("debug, info, warn, error");
  });

  // A value pasted from a Windows-edited .env file (docker --env-file keeps the CR) or a quoted
  // multi-line value must still give one line on stderr.
  test("a value with a line break still gives a one-line message", () => {
    expectOneLine(refused({ ENVIRONMENT: "production\r" }), "ENVIRONMENT");
    expectOneLine(refused({ LOG_LEVEL: "info\nx" }), "LOG_LEVEL");
  });
});

describe("outside local, secrets are required", () => {
  for (const environment of ["staging", "production"]) {
    const base = { ENVIRONMENT: environment, FIRST_SUPERUSER_PASSWORD: SUPER_PASSWORD };

    test(`${environment}: SECRET_KEY missing, "changethis", or 31 characters`, () => {
      expectOneLine(refused(base), "SECRET_KEY");
      expectOneLine(refused({ ...base, SECRET_KEY: "" }), "SECRET_KEY");
      expectOneLine(refused({ ...base, SECRET_KEY: "changethis" }), "SECRET_KEY");
      const short = refused({ ...base, SECRET_KEY: "k".repeat(31) });
      expectOneLine(short, "SECRET_KEY");
      expect(short).toContain("32");
      expect(loadConfig({ ...base, SECRET_KEY: "k".repeat(32) }).secretKey).toBe("k".repeat(32));
    });

    test(`${environment}: FIRST_SUPERUSER_PASSWORD missing or "changethis"`, () => {
      const withKey = { ENVIRONMENT: environment, SECRET_KEY: STRONG };
      expectOneLine(refused(withKey), "FIRST_SUPERUSER_PASSWORD");
      expectOneLine(
        refused({ ...withKey, FIRST_SUPERUSER_PASSWORD: "changethis" }),
        "FIRST_SUPERUSER_PASSWORD",
      );
      const ok = loadConfig({ ...withKey, FIRST_SUPERUSER_PASSWORD: SUPER_PASSWORD });
      expect(ok.firstSuperuserPassword).toBe(SUPER_PASSWORD);
    });

    test(`${environment}: refusals never echo the secret itself`, () => {
      const key = "k".repeat(31);
      expect(refused({ ...base, SECRET_KEY: key })).not.toContain(key);
      const pw = "pw-x";
      const msg = refused({
        ENVIRONMENT: environment,
        SECRET_KEY: STRONG,
        FIRST_SUPERUSER_PASSWORD: pw,
      });
      expectOneLine(msg, "FIRST_SUPERUSER_PASSWORD");
      expect(msg).not.toContain(pw);
    });
  }

  test("local: no secrets needed, the local superuser password is the template's", () => {
    const c = loadConfig({ ENVIRONMENT: "local" });
    expect(c.secretKey).toBe("");
    expect(c.firstSuperuserPassword).toBe("changethis");
  });
});

describe("helpText()", () => {
  const text = helpText();
  const lines = text.split("\n");

  test("names every setting with the spec's default", () => {
    const listing = new Map<string, string>();
    for (const l of lines) {
      const m = /^ {2}([A-Z][A-Z0-9_]+) +\[([^\]]*)\] \S/.exec(l);
      if (m) listing.set(m[1] as string, m[2] as string);
    }
    checkListing(listing);
    expect(listing.get("PORT")).toBe("8000");
  });

  test("covers every setting the spec lists", () => {
    const spec = [
      "HOST",
      "PORT",
      "ENVIRONMENT",
      "SECRET_KEY",
      "ACCESS_TOKEN_EXPIRE_MINUTES",
      "DATABASE_URL",
      "REDIS_URL",
      "FIRST_SUPERUSER",
      "FIRST_SUPERUSER_PASSWORD",
      "USERS_OPEN_REGISTRATION",
      "BACKEND_CORS_ORIGINS",
      "BOT_ENABLED",
      "RATE_LIMIT_CAPACITY",
      "RATE_LIMIT_REFILL_PER_SECOND",
      "ROOM_EMPTY_TTL_SECONDS",
      "LOG_LEVEL",
      "WS_MAX_PAYLOAD_BYTES",
      "WS_IDLE_TIMEOUT_SECONDS",
      "WS_BACKPRESSURE_LIMIT_BYTES",
      "MAX_CONNECTIONS_PER_USER",
      "MAX_ROOMS",
      "MAX_ROOMS_PER_USER",
    ];
    const names = SETTINGS.map((s) => s.env);
    for (const name of spec) expect(names).toContain(name);
  });
  // loadConfig({})'s defaults are checked against literals in "defaults (spec, Settings)" above.
});

describe("ensureLocalSecret()", () => {
  const dirs: string[] = [];
  const tempDir = () => {
    const d = mkdtempSync(join(tmpdir(), "kabar-config-"));
    dirs.push(d);
    return d;
  };
  afterAll(() => {
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });

  test("generates a key once into DATA_DIR; a new config loads the same key", () => {
    const dataDir = join(tempDir(), "nested", "data");
    const first = loadConfig({ DATA_DIR: dataDir });
    expect(ensureLocalSecret(first)).toBe("generated");
    expect(first.secretKey.length).toBeGreaterThanOrEqual(32);
    const file = join(dataDir, "secret_key");
    expect(readFileSync(file, "utf8").trim()).toBe(first.secretKey);
    expect(statSync(file).mode & 0o077).toBe(0);

    // A restart: a fresh config from the same environment.
    const second = loadConfig({ DATA_DIR: dataDir });
    expect(second.secretKey).toBe("");
    expect(ensureLocalSecret(second)).toBe("file");
    expect(second.secretKey).toBe(first.secretKey);
    expect(readFileSync(file, "utf8").trim()).toBe(first.secretKey);
  });

  test("two data folders get two different keys", () => {
    const a = loadConfig({ DATA_DIR: tempDir() });
    const b = loadConfig({ DATA_DIR: tempDir() });
    ensureLocalSecret(a);
    ensureLocalSecret(b);
    expect(a.secretKey).not.toBe(b.secretKey);
  });

  test("SECRET_KEY from the environment wins and writes nothing", () => {
    const dataDir = tempDir();
    const c = loadConfig({ DATA_DIR: dataDir, SECRET_KEY: STRONG });
    expect(ensureLocalSecret(c)).toBe("env");
    expect(c.secretKey).toBe(STRONG);
    expect(existsSync(join(dataDir, "secret_key"))).toBe(false);
  });

  test("a too-short key file is refused with a ConfigError naming SECRET_KEY", async () => {
    const dataDir = tempDir();
    await Bun.write(join(dataDir, "secret_key"), "short\n");
    let caught: unknown;
    try {
      ensureLocalSecret(loadConfig({ DATA_DIR: dataDir }));
    } catch (e) {
      caught = e;
    }
    expect(caught).toBeInstanceOf(ConfigError);
    expectOneLine((caught as ConfigError).message, "SECRET_KEY");
  });
});
