// Node directory in Redis. Every method is one Lua script (see redis-script.ts). Keys, under
// `prefix` (default `kabar:`):
//   {p}nodes           zset  node id → heartbeat expiry (ms)
//   {p}nodeconns       hash  node id → live sockets at its last heartbeat
//   {p}claim:{node}    string, with a TTL: who cleans up after a dead node, for how long
//   {p}uc:{user}       hash  node id → that user's sockets on the node (field gone at 0)
//   {p}nu:{node}       set   users with sockets on the node (so bury is one set, not a scan)
import type { RedisClient } from "bun";
import { BrokerUnavailableError } from "./broker.ts";
import type { NodeDirectory, NodeInfo } from "./nodes.ts";
import { Script, ScriptRunner } from "./redis-script.ts";

const COMMON = `
local p = ARGV[1]
local function dropUser(user, node)
  redis.call("HDEL", p .. "uc:" .. user, node)
  redis.call("SREM", p .. "nu:" .. node, user)
end
`;

const SCRIPTS = {
  heartbeat: new Script(
    `
local fresh = redis.call("ZADD", p .. "nodes", ARGV[4], ARGV[2])
redis.call("HSET", p .. "nodeconns", ARGV[2], ARGV[3])
return fresh
`,
    COMMON,
  ),
  live: new Script(
    `
local ids = redis.call("ZRANGEBYSCORE", p .. "nodes", "(" .. ARGV[2], "+inf")
local out = {}
for _, id in ipairs(ids) do
  out[#out + 1] = id
  out[#out + 1] = redis.call("HGET", p .. "nodeconns", id) or "0"
end
return out
`,
    COMMON,
  ),
  claimDead: new Script(
    `
local ids = redis.call("ZRANGEBYSCORE", p .. "nodes", "-inf", ARGV[2])
local out = {}
for _, id in ipairs(ids) do
  if redis.call("SET", p .. "claim:" .. id, "1", "NX", "PX", ARGV[3]) then out[#out + 1] = id end
end
return out
`,
    COMMON,
  ),
  bury: new Script(
    `
local node = ARGV[2]
for _, user in ipairs(redis.call("SMEMBERS", p .. "nu:" .. node)) do
  redis.call("HDEL", p .. "uc:" .. user, node)
end
redis.call("DEL", p .. "nu:" .. node, p .. "claim:" .. node)
redis.call("ZREM", p .. "nodes", node)
redis.call("HDEL", p .. "nodeconns", node)
return 1
`,
    COMMON,
  ),
  add: new Script(
    `
local key = p .. "uc:" .. ARGV[2]
local total = 0
for _, n in ipairs(redis.call("HVALS", key)) do total = total + tonumber(n) end
if total >= tonumber(ARGV[4]) then return 0 end
redis.call("HINCRBY", key, ARGV[3], 1)
redis.call("SADD", p .. "nu:" .. ARGV[3], ARGV[2])
return 1
`,
    COMMON,
  ),
  remove: new Script(
    `
local key = p .. "uc:" .. ARGV[2]
if redis.call("HEXISTS", key, ARGV[3]) == 0 then return 0 end
if redis.call("HINCRBY", key, ARGV[3], -1) <= 0 then dropUser(ARGV[2], ARGV[3]) end
return 1
`,
    COMMON,
  ),
  resync: new Script(
    `
local node = ARGV[2]
if ARGV[3] == "1" then
  for _, user in ipairs(redis.call("SMEMBERS", p .. "nu:" .. node)) do
    redis.call("HDEL", p .. "uc:" .. user, node)
  end
  redis.call("DEL", p .. "nu:" .. node)
end
for i = 4, #ARGV, 2 do
  redis.call("HSET", p .. "uc:" .. ARGV[i], node, ARGV[i + 1])
  redis.call("SADD", p .. "nu:" .. node, ARGV[i])
end
return 1
`,
    COMMON,
  ),
  userConnections: new Script(
    `
local total = 0
for _, n in ipairs(redis.call("HVALS", p .. "uc:" .. ARGV[2])) do total = total + tonumber(n) end
return total
`,
    COMMON,
  ),
};

/** Users per resync script call: keeps each script short (Redis runs one at a time). */
const RESYNC_CHUNK = 1000;

const strings = (what: string, v: unknown): string[] => {
  if (!Array.isArray(v) || v.some((x) => typeof x !== "string"))
    throw new Error(`unexpected Redis reply for ${what}: ${JSON.stringify(v)}`);
  return v as string[];
};

export class RedisNodeDirectory implements NodeDirectory {
  private readonly runner: ScriptRunner;

  constructor(
    client: RedisClient,
    private readonly prefix = "kabar:",
    timeoutMs = 5_000,
  ) {
    this.runner = new ScriptRunner(
      client,
      (message, cause) => new BrokerUnavailableError(cause ?? message),
      timeoutMs,
    );
  }

  load(): Promise<void> {
    return this.runner.load(Object.values(SCRIPTS));
  }

  private run(script: Script, ...args: string[]): Promise<unknown> {
    return this.runner.run(script, [this.prefix, ...args]);
  }

  async heartbeat(nodeId: string, connections: number, expiresAt: number): Promise<boolean> {
    return (
      (await this.run(SCRIPTS.heartbeat, nodeId, String(connections), String(expiresAt))) === 1
    );
  }

  async live(now: number): Promise<NodeInfo[]> {
    const flat = strings("live", await this.run(SCRIPTS.live, String(now)));
    const out: NodeInfo[] = [];
    for (let i = 0; i + 1 < flat.length; i += 2)
      out.push({ id: flat[i] as string, connections: Number(flat[i + 1]) });
    return out.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  }

  async claimDead(now: number, leaseMs: number): Promise<string[]> {
    const ids = strings(
      "claimDead",
      await this.run(SCRIPTS.claimDead, String(now), String(leaseMs)),
    );
    return ids.sort();
  }

  async bury(nodeId: string): Promise<void> {
    await this.run(SCRIPTS.bury, nodeId);
  }

  async addConnection(userId: string, nodeId: string, max: number): Promise<boolean> {
    return (await this.run(SCRIPTS.add, userId, nodeId, String(max))) === 1;
  }

  async removeConnection(userId: string, nodeId: string): Promise<void> {
    await this.run(SCRIPTS.remove, userId, nodeId);
  }

  async resync(nodeId: string, counts: ReadonlyMap<string, number>): Promise<void> {
    const pairs = [...counts].filter(([, n]) => n > 0);
    let first = true;
    for (let i = 0; first || i < pairs.length; i += RESYNC_CHUNK) {
      const args = pairs.slice(i, i + RESYNC_CHUNK).flatMap(([u, n]) => [u, String(n)]);
      await this.run(SCRIPTS.resync, nodeId, first ? "1" : "0", ...args);
      first = false;
    }
  }

  async userConnections(userId: string): Promise<number> {
    return Number(await this.run(SCRIPTS.userConnections, userId));
  }

  async dispose(): Promise<void> {}
}
