// Settings: read once at start from the environment, validated with TypeBox.
// A bad value stops the server with one line naming the variable and what is wrong.
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { availableParallelism } from "node:os";
import { join, resolve } from "node:path";
import { type TSchema, Type } from "@sinclair/typebox";
import { Value } from "@sinclair/typebox/value";
import { parseTrusted } from "./rest/client-address.ts";

export type Environment = "local" | "staging" | "production";
export type LogLevel = "debug" | "info" | "warn" | "error";

export interface Config {
  host: string;
  port: number;
  environment: Environment;
  secretKey: string;
  accessTokenExpireMinutes: number;
  dataDir: string;
  databaseUrl: string;
  redisUrl: string | undefined;
  nodeTtlSeconds: number;
  /** CLUSTER_COALESCE_MS: see src/cluster/coalescer.ts. */
  clusterCoalesceMs: number;
  roomHistorySize: number;
  roomHistoryTtlSeconds: number;
  historyMaxBytes: number;
  /** WORKERS: how many worker processes to supervise (`auto` resolved); undefined: one process. */
  workers: number | undefined;
  firstSuperuser: string;
  firstSuperuserPassword: string;
  usersOpenRegistration: boolean;
  corsOrigins: string[];
  /** Reverse proxies whose X-Forwarded-For names the client (addresses, IPv4 CIDRs, `*`). */
  forwardedAllowIps: string[];
  botEnabled: boolean;
  rateLimitCapacity: number;
  rateLimitRefillPerSecond: number;
  roomEmptyTtlSeconds: number;
  logLevel: LogLevel;
  wsMaxPayloadBytes: number;
  wsIdleTimeoutSeconds: number;
  wsBackpressureLimitBytes: number;
  maxConnectionsPerUser: number;
  /** New sockets per second per client address (burst 10×); 0: no limit. Per node. */
  connectRatePerIp: number;
  /** CONNECT_REFUSAL_DELAY_MS: how long a 429 of CONNECT_RATE_PER_IP is held before it is sent. */
  connectRefusalDelayMs: number;
  /** Upgrades run per event-loop turn; past it they wait for a later turn. 0: no pacing. */
  wsUpgradesPerTurn: number;
  /** ROOM_FANOUT_SLICE: sockets per Bun topic of a room (the rest in later turns). 0: one topic. */
  roomFanoutSlice: number;
  /** FD_PREALLOCATE: open-files table slots made at start (src/fd-table.ts); 0: none. */
  fdPreallocate: number;
  maxRooms: number;
  maxRoomsPerUser: number;
}

export class ConfigError extends Error {}

type Kind = "string" | "int" | "number" | "bool" | "enum" | "list";

interface Setting {
  env: string;
  key: keyof Config;
  kind: Kind;
  /** Shown in --help; `undefined` means "unset". */
  fallback: string | undefined;
  help: string;
  schema?: TSchema;
}

const Port = Type.Integer({ minimum: 0, maximum: 65535 });
const Positive = Type.Integer({ minimum: 1 });

export const SETTINGS: readonly Setting[] = [
  { env: "HOST", key: "host", kind: "string", fallback: "0.0.0.0", help: "address to listen on" },
  { env: "PORT", key: "port", kind: "int", fallback: "8000", help: "TCP port", schema: Port },
  {
    env: "ENVIRONMENT",
    key: "environment",
    kind: "enum",
    fallback: "local",
    help: "local | staging | production (outside local, secrets must be set)",
    schema: Type.Union([
      Type.Literal("local"),
      Type.Literal("staging"),
      Type.Literal("production"),
    ]),
  },
  {
    env: "SECRET_KEY",
    key: "secretKey",
    kind: "string",
    fallback: undefined,
    help: "HS256 signing key, >= 32 chars; in local a key is generated once into DATA_DIR",
  },
  {
    env: "ACCESS_TOKEN_EXPIRE_MINUTES",
    key: "accessTokenExpireMinutes",
    kind: "int",
    fallback: "11520",
    help: "lifetime of access tokens (8 days)",
    schema: Positive,
  },
  {
    env: "DATA_DIR",
    key: "dataDir",
    kind: "string",
    fallback: "./data",
    help: "folder for the default SQLite database and the generated local secret",
  },
  {
    env: "DATABASE_URL",
    key: "databaseUrl",
    kind: "string",
    fallback: "sqlite://<DATA_DIR>/kabar.db",
    help: "sqlite://relative/path.db, sqlite:///absolute/path.db or postgres://user@host:port/db",
  },
  {
    env: "REDIS_URL",
    key: "redisUrl",
    kind: "string",
    fallback: undefined,
    help: "redis://host:port[/db]: this node joins the cluster that shares this Redis; unset: one node",
  },
  {
    env: "NODE_TTL_SECONDS",
    key: "nodeTtlSeconds",
    kind: "int",
    fallback: "10",
    help: "cluster mode: a node that has not heartbeated for this long is dead",
    schema: Positive,
  },
  {
    env: "CLUSTER_COALESCE_MS",
    key: "clusterCoalesceMs",
    kind: "int",
    fallback: "1",
    help: "cluster mode: while messages from Redis come densely, the first waits this long and the rest go out with it, so each socket gets them in fewer writes; 0: off",
    schema: Type.Integer({ minimum: 0, maximum: 50 }),
  },
  {
    env: "ROOM_HISTORY_SIZE",
    key: "roomHistorySize",
    kind: "int",
    fallback: "100",
    help: "messages kept per room for `history` and recovery; 0 turns both off",
    schema: Type.Integer({ minimum: 0, maximum: 100_000 }),
  },
  {
    env: "ROOM_HISTORY_TTL_SECONDS",
    key: "roomHistoryTtlSeconds",
    kind: "int",
    fallback: "600",
    help: "a room's history is kept this long after its last message",
    schema: Positive,
  },
  {
    env: "HISTORY_MAX_BYTES",
    key: "historyMaxBytes",
    kind: "int",
    fallback: "67108864",
    help: "memory one node spends on room history (one node); the oldest messages go first",
    schema: Positive,
  },
  {
    env: "WORKERS",
    key: "workers",
    kind: "string",
    fallback: undefined,
    help: "N or auto (one per core): N nodes on this machine share the port, supervised by this process; needs REDIS_URL",
  },
  {
    env: "FIRST_SUPERUSER",
    key: "firstSuperuser",
    kind: "string",
    fallback: "admin@example.com",
    help: "email of the superuser created at start when absent",
  },
  {
    env: "FIRST_SUPERUSER_PASSWORD",
    key: "firstSuperuserPassword",
    kind: "string",
    fallback: "changethis (local only)",
    help: "its password; required outside local",
  },
  {
    env: "USERS_OPEN_REGISTRATION",
    key: "usersOpenRegistration",
    kind: "bool",
    fallback: "true in local, else false",
    help: "allow POST /users/signup",
  },
  {
    env: "BACKEND_CORS_ORIGINS",
    key: "corsOrigins",
    kind: "list",
    fallback: "",
    help: 'allowed origins, comma-separated or a JSON array; "*" allows any',
  },
  {
    env: "FORWARDED_ALLOW_IPS",
    key: "forwardedAllowIps",
    kind: "list",
    fallback: "",
    help: 'reverse proxies (IPs, IPv4 CIDRs, "*") whose X-Forwarded-For names the client for the login throttle and CONNECT_RATE_PER_IP; empty: the TCP peer',
  },
  { env: "BOT_ENABLED", key: "botEnabled", kind: "bool", fallback: "true", help: "the test bot" },
  {
    env: "RATE_LIMIT_CAPACITY",
    key: "rateLimitCapacity",
    kind: "int",
    fallback: "100",
    help: "token bucket size, frames per user",
    schema: Positive,
  },
  {
    env: "RATE_LIMIT_REFILL_PER_SECOND",
    key: "rateLimitRefillPerSecond",
    kind: "number",
    fallback: "1.6667",
    help: "tokens added per second (100 per 60 s)",
    schema: Type.Number({ exclusiveMinimum: 0 }),
  },
  {
    env: "ROOM_EMPTY_TTL_SECONDS",
    key: "roomEmptyTtlSeconds",
    kind: "number",
    fallback: "300",
    help: "an empty room is removed after this long",
    schema: Type.Number({ exclusiveMinimum: 0 }),
  },
  {
    env: "LOG_LEVEL",
    key: "logLevel",
    kind: "enum",
    fallback: "info",
    help: "debug | info | warn | error",
    schema: Type.Union([
      Type.Literal("debug"),
      Type.Literal("info"),
      Type.Literal("warn"),
      Type.Literal("error"),
    ]),
  },
  {
    env: "WS_MAX_PAYLOAD_BYTES",
    key: "wsMaxPayloadBytes",
    kind: "int",
    fallback: "65536",
    help: "larger frames close the socket with 1009",
    schema: Type.Integer({ minimum: 128 }),
  },
  {
    env: "WS_IDLE_TIMEOUT_SECONDS",
    key: "wsIdleTimeoutSeconds",
    kind: "int",
    fallback: "60",
    help: "silent sockets are pinged, then closed (max 960)",
    schema: Type.Integer({ minimum: 1, maximum: 960 }),
  },
  {
    env: "WS_BACKPRESSURE_LIMIT_BYTES",
    key: "wsBackpressureLimitBytes",
    kind: "int",
    fallback: "1048576",
    help: "a socket with more unsent bytes is closed (slow reader)",
    schema: Type.Integer({ minimum: 1024 }),
  },
  {
    env: "MAX_CONNECTIONS_PER_USER",
    key: "maxConnectionsPerUser",
    kind: "int",
    fallback: "20",
    help: "more sockets of one user are closed with 1008",
    schema: Positive,
  },
  {
    env: "CONNECT_RATE_PER_IP",
    key: "connectRatePerIp",
    kind: "int",
    fallback: "100",
    help: "new sockets per second per client address (per node), burst 10x; over it 429 before the upgrade; 0: off",
    schema: Type.Integer({ minimum: 0, maximum: 1_000_000 }),
  },
  {
    env: "CONNECT_REFUSAL_DELAY_MS",
    key: "connectRefusalDelayMs",
    kind: "int",
    fallback: "250",
    help: "a 429 of CONNECT_RATE_PER_IP is sent this long after the request (at most 1,000 held at once), so a client that retries at once is slowed to its own concurrency; 0: at once",
    schema: Type.Integer({ minimum: 0, maximum: 60_000 }),
  },
  {
    env: "WS_UPGRADES_PER_TURN",
    key: "wsUpgradesPerTurn",
    kind: "int",
    fallback: "8",
    help: "WebSocket upgrades per event-loop turn; more wait for later turns, so a burst of connects does not stall other sockets; 0: off",
    schema: Type.Integer({ minimum: 0, maximum: 1_000_000 }),
  },
  {
    env: "ROOM_FANOUT_SLICE",
    key: "roomFanoutSlice",
    kind: "int",
    fallback: "64",
    help: "a room's sockets on one node go on topics of this many; a room message reaches the first at once and each further one in a later event-loop turn, so a big room does not stall the others; 0: one topic per room",
    schema: Type.Integer({ minimum: 0, maximum: 1_000_000 }),
  },
  {
    env: "FD_PREALLOCATE",
    key: "fdPreallocate",
    kind: "int",
    fallback: "65536",
    help: "the open-files table is grown to this many descriptors (at most the open-files limit) before the server listens, so no accept() waits for it to grow during a burst of connects (Linux); 0: off",
    schema: Type.Integer({ minimum: 0, maximum: 16_777_216 }),
  },
  {
    env: "MAX_ROOMS",
    key: "maxRooms",
    kind: "int",
    fallback: "10000",
    help: "rooms in total",
    schema: Positive,
  },
  {
    env: "MAX_ROOMS_PER_USER",
    key: "maxRoomsPerUser",
    kind: "int",
    fallback: "50",
    help: "open rooms one user may have created",
    schema: Positive,
  },
];

const TRUE = new Set(["1", "true", "yes", "on"]);
const FALSE = new Set(["0", "false", "no", "off"]);

function parseValue(s: Setting, raw: string): unknown {
  switch (s.kind) {
    case "int": {
      if (!/^-?\d+$/.test(raw.trim())) throw new ConfigError(`${s.env}: expected an integer`);
      return Number(raw);
    }
    case "number": {
      const n = Number(raw);
      if (raw.trim() === "" || !Number.isFinite(n))
        throw new ConfigError(`${s.env}: expected a number`);
      return n;
    }
    case "bool": {
      const v = raw.trim().toLowerCase();
      if (TRUE.has(v)) return true;
      if (FALSE.has(v)) return false;
      throw new ConfigError(`${s.env}: expected true or false`);
    }
    case "list": {
      const v = raw.trim();
      if (v.startsWith("[")) {
        let parsed: unknown;
        try {
          parsed = JSON.parse(v);
        } catch {
          throw new ConfigError(`${s.env}: not a valid JSON array`);
        }
        if (!Array.isArray(parsed) || !parsed.every((x) => typeof x === "string"))
          throw new ConfigError(`${s.env}: expected an array of strings`);
        return parsed.map((x: string) => x.trim().replace(/\/$/, "")).filter(Boolean);
      }
      return v
        .split(",")
        .map((x) => x.trim().replace(/\/$/, ""))
        .filter(Boolean);
    }
    default:
      return raw;
  }
}

function describe(schema: TSchema, value: unknown): string {
  const first = Value.Errors(schema, value).First();
  if (!first) return "invalid value";
  if ("anyOf" in schema) {
    const options = (schema.anyOf as TSchema[]).map((x) => String(x.const)).join(", ");
    return `expected one of ${options}`;
  }
  return first.message.toLowerCase();
}

const WEAK_SECRET = "changethis";

/** WORKERS: `auto` (one per core) or a count, 1 to 1024; undefined when unset. */
function parseWorkers(raw: string | undefined): number | undefined {
  if (raw === undefined) return undefined;
  const v = raw.trim().toLowerCase();
  if (v === "auto") return availableParallelism();
  const n = /^\d+$/.test(v) ? Number(v) : Number.NaN;
  if (!(n >= 1 && n <= 1024))
    throw new ConfigError(`WORKERS: expected 1 to 1024 or auto (got ${JSON.stringify(raw)})`);
  return n;
}

/** True when a key would be refused outside local (main warns about it in local). */
export const isWeakSecret = (key: string) => key === WEAK_SECRET || key.length < 32;

/** Reads every setting from `env`. Throws ConfigError with one line naming the variable. */
export function loadConfig(env: Record<string, string | undefined> = process.env): Config {
  const out: Record<string, unknown> = {};
  for (const s of SETTINGS) {
    const raw = env[s.env];
    if (raw === undefined || raw === "") continue;
    const value = parseValue(s, raw);
    if (s.schema && !Value.Check(s.schema, value))
      throw new ConfigError(`${s.env}: ${describe(s.schema, value)} (got ${JSON.stringify(raw)})`);
    out[s.key] = value;
  }
  const environment = (out.environment as Environment | undefined) ?? "local";
  const dataDir = resolve((out.dataDir as string | undefined) ?? "./data");
  const secret = out.secretKey as string | undefined;
  const superPassword = out.firstSuperuserPassword as string | undefined;
  if (environment !== "local") {
    if (!secret) throw new ConfigError(`SECRET_KEY: required when ENVIRONMENT=${environment}`);
    if (secret === WEAK_SECRET)
      throw new ConfigError(
        `SECRET_KEY: must not be "${WEAK_SECRET}" (ENVIRONMENT=${environment})`,
      );
    if (secret.length < 32)
      throw new ConfigError(`SECRET_KEY: must be at least 32 characters (got ${secret.length})`);
    if (!superPassword)
      throw new ConfigError(`FIRST_SUPERUSER_PASSWORD: required when ENVIRONMENT=${environment}`);
    if (superPassword === WEAK_SECRET)
      throw new ConfigError(
        `FIRST_SUPERUSER_PASSWORD: must not be "${WEAK_SECRET}" (ENVIRONMENT=${environment})`,
      );
  }
  if (superPassword !== undefined && (superPassword.length < 8 || superPassword.length > 128))
    throw new ConfigError("FIRST_SUPERUSER_PASSWORD: must be 8 to 128 characters");
  const databaseUrl =
    (out.databaseUrl as string | undefined) ?? `sqlite://${join(dataDir, "kabar.db")}`;
  if (/^postgres(ql)?:\/\//.test(databaseUrl)) {
    if (!URL.canParse(databaseUrl))
      throw new ConfigError("DATABASE_URL: not a valid postgres://user:password@host:port/db URL");
  } else if (!databaseUrl.startsWith("sqlite://"))
    throw new ConfigError("DATABASE_URL: expected sqlite://path.db or postgres://host/db");
  const redisUrl = out.redisUrl as string | undefined;
  if (
    redisUrl !== undefined &&
    !(/^(redis|rediss|valkey):\/\//.test(redisUrl) && URL.canParse(redisUrl))
  )
    throw new ConfigError("REDIS_URL: expected redis://host:port or rediss://host:port");
  const forwardedAllowIps = (out.forwardedAllowIps as string[] | undefined) ?? [];
  try {
    parseTrusted(forwardedAllowIps);
  } catch (e) {
    throw new ConfigError(`FORWARDED_ALLOW_IPS: ${(e as Error).message}`);
  }
  const workers = parseWorkers(out.workers as string | undefined);
  if (workers !== undefined && redisUrl === undefined)
    throw new ConfigError(
      "WORKERS: needs REDIS_URL (workers share rooms and messages through Redis)",
    );
  return {
    host: (out.host as string | undefined) ?? "0.0.0.0",
    port: (out.port as number | undefined) ?? 8000,
    environment,
    secretKey: secret ?? "",
    accessTokenExpireMinutes: (out.accessTokenExpireMinutes as number | undefined) ?? 11520,
    dataDir,
    databaseUrl,
    redisUrl,
    nodeTtlSeconds: (out.nodeTtlSeconds as number | undefined) ?? 10,
    clusterCoalesceMs: (out.clusterCoalesceMs as number | undefined) ?? 1,
    roomHistorySize: (out.roomHistorySize as number | undefined) ?? 100,
    roomHistoryTtlSeconds: (out.roomHistoryTtlSeconds as number | undefined) ?? 600,
    historyMaxBytes: (out.historyMaxBytes as number | undefined) ?? 67_108_864,
    workers,
    firstSuperuser: (
      (out.firstSuperuser as string | undefined) ?? "admin@example.com"
    ).toLowerCase(),
    firstSuperuserPassword: superPassword ?? WEAK_SECRET,
    usersOpenRegistration:
      (out.usersOpenRegistration as boolean | undefined) ?? environment === "local",
    corsOrigins: (out.corsOrigins as string[] | undefined) ?? [],
    forwardedAllowIps,
    botEnabled: (out.botEnabled as boolean | undefined) ?? true,
    rateLimitCapacity: (out.rateLimitCapacity as number | undefined) ?? 100,
    rateLimitRefillPerSecond: (out.rateLimitRefillPerSecond as number | undefined) ?? 100 / 60,
    roomEmptyTtlSeconds: (out.roomEmptyTtlSeconds as number | undefined) ?? 300,
    logLevel: (out.logLevel as LogLevel | undefined) ?? "info",
    wsMaxPayloadBytes: (out.wsMaxPayloadBytes as number | undefined) ?? 65536,
    wsIdleTimeoutSeconds: (out.wsIdleTimeoutSeconds as number | undefined) ?? 60,
    wsBackpressureLimitBytes: (out.wsBackpressureLimitBytes as number | undefined) ?? 1048576,
    maxConnectionsPerUser: (out.maxConnectionsPerUser as number | undefined) ?? 20,
    connectRatePerIp: (out.connectRatePerIp as number | undefined) ?? 100,
    connectRefusalDelayMs: (out.connectRefusalDelayMs as number | undefined) ?? 250,
    wsUpgradesPerTurn: (out.wsUpgradesPerTurn as number | undefined) ?? 8,
    roomFanoutSlice: (out.roomFanoutSlice as number | undefined) ?? 64,
    fdPreallocate: (out.fdPreallocate as number | undefined) ?? 65536,
    maxRooms: (out.maxRooms as number | undefined) ?? 10000,
    maxRoomsPerUser: (out.maxRoomsPerUser as number | undefined) ?? 50,
  };
}

/**
 * In local mode a missing SECRET_KEY is generated once and kept in DATA_DIR/secret_key,
 * so tokens survive restarts. Returns true when a key was generated or loaded from file.
 */
export function ensureLocalSecret(config: Config): "env" | "file" | "generated" {
  if (config.secretKey) return "env";
  mkdirSync(config.dataDir, { recursive: true });
  const file = join(config.dataDir, "secret_key");
  if (existsSync(file)) {
    const key = readFileSync(file, "utf8").trim();
    if (key.length < 32) throw new ConfigError(`SECRET_KEY: the key in ${file} is too short`);
    config.secretKey = key;
    return "file";
  }
  const bytes = crypto.getRandomValues(new Uint8Array(48));
  config.secretKey = Buffer.from(bytes).toString("base64url");
  writeFileSync(file, `${config.secretKey}\n`, { mode: 0o600 });
  return "generated";
}

/** The --help text: `usage` (the command lines, src/cli.ts) then every setting. */
export function helpText(
  usage: readonly string[] = ["Usage: kabar [--help] [--workers N|auto]"],
): string {
  const lines = [
    "kabar — real-time rooms server",
    "",
    ...usage,
    "",
    "Settings (environment variables, default in brackets):",
  ];
  const width = Math.max(...SETTINGS.map((s) => s.env.length));
  for (const s of SETTINGS) {
    const def = s.fallback === undefined ? "unset" : s.fallback === "" ? "empty" : s.fallback;
    lines.push(`  ${s.env.padEnd(width)}  [${def}] ${s.help}`);
  }
  return lines.join("\n");
}
