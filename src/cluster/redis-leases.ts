// Shared token buckets in Redis (see leases.ts). One Lua script per call; the bucket refills by
// Redis's own clock (TIME), so nodes with skewed clocks agree. Key, under `prefix`:
//   {p}rl:{user}   hash  tokens (float), last (ms); expires once it would be full again
import type { RedisClient } from "bun";
import { BrokerUnavailableError } from "./broker.ts";
import type { Grant, TokenLeases } from "./leases.ts";
import { Script, ScriptRunner } from "./redis-script.ts";

/** ARGV: prefix, user, capacity, refill per ms; then the body's own. */
const COMMON = `
local p = ARGV[1]
local key = p .. "rl:" .. ARGV[2]
local capacity, refill = tonumber(ARGV[3]), tonumber(ARGV[4])
local t = redis.call("TIME")
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local b = redis.call("HMGET", key, "tokens", "last")
local tokens, last = tonumber(b[1]) or capacity, tonumber(b[2]) or now
if now > last then
  tokens = math.min(capacity, tokens + (now - last) * refill)
  last = now
end
local function save()
  redis.call("HSET", key, "tokens", tostring(tokens), "last", tostring(last))
  redis.call("PEXPIRE", key, math.ceil((capacity - tokens) / refill) + 1000)
end
`;

const LEASE = new Script(
  `
local grant = math.min(tonumber(ARGV[5]), math.floor(tokens))
if grant < 0 then grant = 0 end
tokens = tokens - grant
save()
return {grant, tostring(tokens)}
`,
  COMMON,
);

const GIVE_BACK = new Script(
  `
tokens = math.min(capacity, tokens + tonumber(ARGV[5]))
save()
return 1
`,
  COMMON,
);

export class RedisTokenLeases implements TokenLeases {
  private readonly runner: ScriptRunner;

  constructor(
    client: RedisClient,
    private readonly prefix = "kabar:",
    timeoutMs = 2_000,
  ) {
    this.runner = new ScriptRunner(
      client,
      (_m, cause) => new BrokerUnavailableError(cause),
      timeoutMs,
    );
  }

  load(): Promise<void> {
    return this.runner.load([LEASE, GIVE_BACK]);
  }

  async lease(
    userId: string,
    want: number,
    capacity: number,
    refillPerSecond: number,
  ): Promise<Grant> {
    const reply = await this.runner.run(LEASE, [
      this.prefix,
      userId,
      String(capacity),
      String(refillPerSecond / 1000),
      String(want),
    ]);
    if (!Array.isArray(reply))
      throw new Error(`unexpected Redis reply for lease: ${String(reply)}`);
    return { granted: Number(reply[0]), left: Number(reply[1]) };
  }

  async giveBack(userId: string, tokens: number, capacity: number, refillPerSecond: number) {
    await this.runner.run(GIVE_BACK, [
      this.prefix,
      userId,
      String(capacity),
      String(refillPerSecond / 1000),
      String(tokens),
    ]);
  }

  async dispose(): Promise<void> {}
}
