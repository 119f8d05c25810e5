// The settings and their defaults as the spec (docs/protocol.md, "Settings" and "Settings added
// in 1.1") states them, written out here so that --help and the README are checked against these
// literals, not against the code's own table. `shown` is the default as --help prints it in
// brackets and as the README's table gives it (without the backticks); none where the spec
// names no value.
import { expect } from "bun:test";

export interface SpecSetting {
  env: string;
  shown?: string;
  /** Version 1 settings must be listed; 1.1 ones, once there, must show the spec's default. */
  since: "1" | "1.1";
}

const V1: ReadonlyArray<Omit<SpecSetting, "since">> = [
  { env: "HOST", shown: "0.0.0.0" },
  { env: "PORT", shown: "8000" },
  { env: "ENVIRONMENT", shown: "local" },
  { env: "SECRET_KEY", shown: "unset" },
  { env: "ACCESS_TOKEN_EXPIRE_MINUTES", shown: "11520" },
  // Not in the spec's list: the folder of the default SQLite file ("an SQLite file under ./data").
  { env: "DATA_DIR", shown: "./data" },
  { env: "DATABASE_URL", shown: "sqlite://<DATA_DIR>/kabar.db" },
  { env: "REDIS_URL", shown: "unset" },
  { env: "FIRST_SUPERUSER", shown: "admin@example.com" },
  { env: "FIRST_SUPERUSER_PASSWORD", shown: "changethis (local only)" },
  { env: "USERS_OPEN_REGISTRATION", shown: "true in local, else false" },
  { env: "BACKEND_CORS_ORIGINS", shown: "empty" },
  // Not in the spec: uvicorn's (the seed's server) trusted-proxy list, for the client address.
  { env: "FORWARDED_ALLOW_IPS", shown: "empty" },
  { env: "BOT_ENABLED", shown: "true" },
  { env: "RATE_LIMIT_CAPACITY", shown: "100" },
  { env: "RATE_LIMIT_REFILL_PER_SECOND", shown: "1.6667" }, // 100/60
  { env: "ROOM_EMPTY_TTL_SECONDS", shown: "300" },
  { env: "LOG_LEVEL", shown: "info" },
  { env: "WS_MAX_PAYLOAD_BYTES", shown: "65536" },
  { env: "WS_IDLE_TIMEOUT_SECONDS", shown: "60" },
  { env: "WS_BACKPRESSURE_LIMIT_BYTES", shown: "1048576" },
  { env: "MAX_CONNECTIONS_PER_USER", shown: "20" },
  { env: "MAX_ROOMS", shown: "10000" },
  { env: "MAX_ROOMS_PER_USER", shown: "50" },
];

const V1_1: ReadonlyArray<Omit<SpecSetting, "since">> = [
  { env: "WORKERS", shown: "unset" },
  { env: "NODE_TTL_SECONDS", shown: "10" },
  // Not in the spec: how long messages from Redis may wait, under load, to go out together.
  { env: "CLUSTER_COALESCE_MS", shown: "1" },
  { env: "ROOM_HISTORY_SIZE", shown: "100" },
  { env: "ROOM_HISTORY_TTL_SECONDS", shown: "600" },
  { env: "HISTORY_MAX_BYTES", shown: "67108864" },
  { env: "CONNECT_RATE_PER_IP" }, // "a default that a busy office behind one NAT does not hit"
  // Not in the spec: upgrades per event-loop turn (a burst of connects does not stall the rest).
  // Not in the spec: how long a connect-limit 429 is held (a client retrying at once is slowed).
  { env: "CONNECT_REFUSAL_DELAY_MS", shown: "250" },
  { env: "WS_UPGRADES_PER_TURN", shown: "8" },
  // Not in the spec: sockets per topic slice of a room (a big room does not stall the rest).
  { env: "ROOM_FANOUT_SLICE", shown: "64" },
  // Not in the spec: the open-files table grown at start (no accept waits for it to grow).
  { env: "FD_PREALLOCATE", shown: "65536" },
];

export const SPEC_SETTINGS: readonly SpecSetting[] = [
  ...V1.map((s) => ({ ...s, since: "1" as const })),
  ...V1_1.map((s) => ({ ...s, since: "1.1" as const })),
];

/**
 * Checks one listing (variable → default as shown): every version 1 setting is there, and every
 * setting there is one of the spec's, with the spec's default (`note`: a default may be followed
 * by a note in brackets, as in the README's `1.6667` (100/60)).
 */
export function checkListing(listing: Map<string, string>, note = false): void {
  for (const s of SPEC_SETTINGS)
    if (s.since === "1") expect(listing.has(s.env), `${s.env} is listed`).toBe(true);
  for (const [env, shown] of listing) {
    const spec = SPEC_SETTINGS.find((s) => s.env === env);
    expect(spec !== undefined, `${env} is a setting of the spec (add it here)`).toBe(true);
    if (spec?.shown === undefined) continue;
    const ok = shown === spec.shown || (note && shown.startsWith(`${spec.shown} (`));
    expect(ok ? spec.shown : shown, `${env}'s default`).toBe(spec.shown);
  }
}
