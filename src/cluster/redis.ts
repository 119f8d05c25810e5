// The node's Redis connection (Bun's built-in RedisClient). No offline queue: while Redis is
// down a command rejects at once (the caller answers `unavailable`) instead of waiting; the
// client reconnects by itself.
import { RedisClient } from "bun";

export class RedisUnreachableError extends Error {
  override readonly name = "RedisUnreachableError";
}

/** Where a Redis URL points, without its password (for logs and errors). */
export function redisAddress(url: string): string {
  try {
    const u = new URL(url);
    return `${u.hostname}:${u.port || "6379"}${u.pathname.length > 1 ? u.pathname : ""}`;
  } catch {
    return "(invalid URL)";
  }
}

/**
 * Connects or throws RedisUnreachableError with one line naming the address. With retries on
 * (a running node must reconnect by itself, however long Redis is away) the client's first
 * `connect()` would retry for ever against a refused port: it gets `startTimeoutMs` instead.
 */
export async function connectRedis(url: string, startTimeoutMs = 5000): Promise<RedisClient> {
  const client = new RedisClient(url, {
    enableOfflineQueue: false,
    autoReconnect: true,
    maxRetries: 4_294_967_295,
    connectionTimeout: 3000,
  });
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new Error(`no answer within ${startTimeoutMs} ms`)),
      startTimeoutMs,
    );
  });
  try {
    await Promise.race([client.connect(), timeout]);
  } catch (e) {
    client.close();
    const why = e instanceof Error ? e.message : String(e);
    throw new RedisUnreachableError(`cannot reach Redis at ${redisAddress(url)}: ${why}`);
  } finally {
    clearTimeout(timer);
  }
  return client;
}
