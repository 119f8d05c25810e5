// Presence in Redis: every node sees the same users per room. Every method is ONE Lua script
// (atomic, one round trip; see cluster/redis-script.ts), so two nodes racing to add (or remove)
// the same user's sockets cannot both see "first" (or "last"). Keys, under `prefix` (default
// `kabar:`; one Redis, not Redis Cluster — the scripts build their keys from the prefix):
//   {p}pm:{room}   hash  member (`${nodeId}:${connId}`) → user id
//   {p}pu:{room}   hash  user id → that user's sockets in the room (field gone at 0)
//   {p}pn:{node}   set   `${byteLength(room)}:${room}${member}` per member of that node (the room
//                        registry's entry encoding: room names may hold ':'), so purgeNode is one
//                        script over one set, not a scan. `{node}` is the member's text before
//                        its first ':'; a purge matches the whole `${nodeId}:` head.
// add, remove, purgeNode and drop keep the three in step: no stale entries, and an empty hash or
// set is no key at all, so nothing grows without bound. A member without ':' is not indexed.
import type { RedisClient } from "bun";
import { BrokerUnavailableError } from "../cluster/broker.ts";
import { Script, ScriptRunner } from "../cluster/redis-script.ts";
import {
  byRoomThenUser,
  byUser,
  type Presence,
  type PresenceLeave,
  type PresenceUser,
} from "./presence.ts";

/** Helpers shared by every script. ARGV[1] is always the key prefix. */
const COMMON = `
local p = ARGV[1]
local function nodeKey(member)
  local c = string.find(member, ":", 1, true)
  if c == nil then return nil end
  return p .. "pn:" .. string.sub(member, 1, c - 1)
end
local function entry(room, member)
  return #room .. ":" .. room .. member
end
-- One socket less for user in room; true when it was the user's last there.
local function release(room, user)
  local uk = p .. "pu:" .. room
  if redis.call("HINCRBY", uk, user, -1) <= 0 then
    redis.call("HDEL", uk, user)
    return true
  end
  return false
end
`;

/** ARGV: prefix, room, user, member → 1 when it is the user's first socket in the room. */
const ADD = `
local room, user, member = ARGV[2], ARGV[3], ARGV[4]
if redis.call("HSETNX", p .. "pm:" .. room, member, user) == 0 then return 0 end
local nk = nodeKey(member)
if nk then redis.call("SADD", nk, entry(room, member)) end
if redis.call("HINCRBY", p .. "pu:" .. room, user, 1) == 1 then return 1 end
return 0
`;

/** ARGV: prefix, room, member → 1 when it was its user's last socket in the room. */
const REMOVE = `
local room, member = ARGV[2], ARGV[3]
local mk = p .. "pm:" .. room
local user = redis.call("HGET", mk, member)
if not user then return 0 end
redis.call("HDEL", mk, member)
local nk = nodeKey(member)
if nk then redis.call("SREM", nk, entry(room, member)) end
if release(room, user) then return 1 end
return 0
`;

/** ARGV: prefix, room → {user, count, ...}. */
const LIST = `
return redis.call("HGETALL", p .. "pu:" .. ARGV[2])
`;

/** ARGV: prefix, nodeId → {room, user, ...}: the pairs whose last socket was on the node. */
const PURGE_NODE = `
local head = ARGV[2] .. ":"
local nk = nodeKey(head)
local out = {}
for _, e in ipairs(redis.call("SMEMBERS", nk)) do
  local c = string.find(e, ":", 1, true)
  local len = tonumber(string.sub(e, 1, c - 1))
  local room = string.sub(e, c + 1, c + len)
  local member = string.sub(e, c + len + 1)
  if string.sub(member, 1, #head) == head then
    redis.call("SREM", nk, e)
    local mk = p .. "pm:" .. room
    local user = redis.call("HGET", mk, member)
    if user then
      redis.call("HDEL", mk, member)
      if release(room, user) then
        out[#out + 1] = room
        out[#out + 1] = user
      end
    end
  end
end
return out
`;

/** ARGV: prefix, room → 1. */
const DROP = `
local room = ARGV[2]
local mk = p .. "pm:" .. room
for _, member in ipairs(redis.call("HKEYS", mk)) do
  local nk = nodeKey(member)
  if nk then redis.call("SREM", nk, entry(room, member)) end
end
redis.call("DEL", mk, p .. "pu:" .. room)
return 1
`;

const SCRIPTS = {
  add: new Script(ADD, COMMON),
  remove: new Script(REMOVE, COMMON),
  list: new Script(LIST, COMMON),
  purgeNode: new Script(PURGE_NODE, COMMON),
  drop: new Script(DROP, COMMON),
};

/** A flat array of strings (pairs) from a script's reply. */
function pairs(what: string, v: unknown): string[] {
  if (!Array.isArray(v) || v.length % 2 !== 0 || v.some((x) => typeof x !== "string"))
    throw new Error(`unexpected Redis reply for ${what}: ${JSON.stringify(v)}`);
  return v as string[];
}

export class RedisPresence implements Presence {
  private readonly runner: ScriptRunner;

  /**
   * `client` is connected already and stays the caller's (dispose does not close it); made with
   * `enableOfflineQueue: false` (cluster/redis.ts), calls reject with BrokerUnavailableError at
   * once while Redis is down, and after `timeoutMs` when it is silent.
   */
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

  /** Loads every script (SCRIPT LOAD) so the first calls are one EVALSHA each. Optional. */
  load(): Promise<void> {
    return this.runner.load(Object.values(SCRIPTS));
  }

  async add(room: string, userId: string, member: string): Promise<boolean> {
    return (await this.run(SCRIPTS.add, room, userId, member)) === 1;
  }

  async remove(room: string, _userId: string, member: string): Promise<boolean> {
    return (await this.run(SCRIPTS.remove, room, member)) === 1;
  }

  async list(room: string): Promise<PresenceUser[]> {
    const flat = pairs("list", await this.run(SCRIPTS.list, room));
    const users: PresenceUser[] = [];
    for (let i = 0; i < flat.length; i += 2)
      users.push({ user_id: flat[i] as string, connections: Number(flat[i + 1]) });
    return users.sort(byUser);
  }

  async purgeNode(nodeId: string): Promise<PresenceLeave[]> {
    const flat = pairs("purgeNode", await this.run(SCRIPTS.purgeNode, nodeId));
    const leaves: PresenceLeave[] = [];
    for (let i = 0; i < flat.length; i += 2)
      leaves.push({ room: flat[i] as string, user_id: flat[i + 1] as string });
    return leaves.sort(byRoomThenUser);
  }

  async drop(room: string): Promise<void> {
    await this.run(SCRIPTS.drop, room);
  }

  /** Presence lives on in Redis for the other nodes; the client is the caller's to close. */
  async dispose(): Promise<void> {}

  private run(script: Script, ...args: string[]): Promise<unknown> {
    return this.runner.run(script, [this.prefix, ...args]);
  }
}
