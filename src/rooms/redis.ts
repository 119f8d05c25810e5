// Room registry in Redis: cluster mode, every node sees the same rooms, counts and limits.
//
// Every method is ONE Lua script (atomic on Redis, one round trip: EVALSHA, with EVAL once when
// Redis answers NOSCRIPT, e.g. after a restart). Nothing is read on the node and written back, so
// two nodes racing cannot both win a name, both take the last slot of a limit, both close or both
// sweep one room.
//
// Keys, under `prefix` (default `kabar:`; one Redis, not Redis Cluster — the scripts build keys
// from the prefix):
//   {p}rooms            zset  room name → creation sequence (list order, exact even within one ms)
//   {p}seq              string INCR'd per created room
//   {p}room:{name}      hash  creator, createdAt (ms, stored as given)
//   {p}members:{name}   set   member keys (`${nodeId}:${connId}`) in the room
//   {p}empty            zset  room name → when it last became empty (ms); absent while it has members
//   {p}creators         hash  user id → open rooms that user created (field gone at 0)
//   {p}node:{nodeId}    set   `${byteLength(name)}:${name}${member}` per member of that node, so
//                             purgeNode is one script over one set, not a scan of every room.
//                             Kept in step by join, leave, close, sweep and purgeNode: no stale
//                             entries, and an empty set is no key at all.
// A member key without ':' belongs to no node and is not indexed (purgeNode never matches it).
import type { RedisClient } from "bun";
import { Script, ScriptRunner } from "../cluster/redis-script.ts";
import {
  type CloseResult,
  type CreateResult,
  RegistryUnavailableError,
  type RoomInfo,
  type RoomLimits,
  type RoomRegistry,
} from "./registry.ts";

/** Helpers shared by every script. ARGV[1] is always the key prefix. */
const COMMON = `
local p = ARGV[1]
local function nodeKey(member)
  local c = string.find(member, ":", 1, true)
  if c == nil then return nil end
  return p .. "node:" .. string.sub(member, 1, c - 1)
end
local function entry(name, member)
  return #name .. ":" .. name .. member
end
local function removeRoom(name)
  local roomKey = p .. "room:" .. name
  local membersKey = p .. "members:" .. name
  local creator = redis.call("HGET", roomKey, "creator")
  for _, member in ipairs(redis.call("SMEMBERS", membersKey)) do
    local nk = nodeKey(member)
    if nk then redis.call("SREM", nk, entry(name, member)) end
  end
  redis.call("DEL", roomKey, membersKey)
  redis.call("ZREM", p .. "rooms", name)
  redis.call("ZREM", p .. "empty", name)
  if creator and redis.call("HINCRBY", p .. "creators", creator, -1) <= 0 then
    redis.call("HDEL", p .. "creators", creator)
  end
end
local function markEmptyIfEmpty(name, now)
  if redis.call("SCARD", p .. "members:" .. name) == 0
    and redis.call("EXISTS", p .. "room:" .. name) == 1 then
    redis.call("ZADD", p .. "empty", now, name)
  end
end
`;

/** ARGV: prefix, name, creator, now, maxRooms, maxRoomsPerUser → 0 or an error code. */
const CREATE = `
local name, creator, now = ARGV[2], ARGV[3], ARGV[4]
local roomKey = p .. "room:" .. name
if redis.call("EXISTS", roomKey) == 1 then return "room_exists" end
if redis.call("ZCARD", p .. "rooms") >= tonumber(ARGV[5]) then return "max_rooms" end
local mine = tonumber(redis.call("HGET", p .. "creators", creator) or "0")
if mine >= tonumber(ARGV[6]) then return "max_rooms_per_user" end
local seq = redis.call("INCR", p .. "seq")
redis.call("HSET", roomKey, "creator", creator, "createdAt", now)
redis.call("ZADD", p .. "rooms", seq, name)
redis.call("HINCRBY", p .. "creators", creator, 1)
redis.call("ZADD", p .. "empty", now, name)
return 0
`;

/** ARGV: prefix, name, member → nil (no room) or {creator, createdAt, members}. */
const JOIN = `
local name, member = ARGV[2], ARGV[3]
local room = redis.call("HMGET", p .. "room:" .. name, "creator", "createdAt")
if not room[1] then return false end
local membersKey = p .. "members:" .. name
if redis.call("SADD", membersKey, member) == 1 then
  local nk = nodeKey(member)
  if nk then redis.call("SADD", nk, entry(name, member)) end
  redis.call("ZREM", p .. "empty", name)
end
return {room[1], room[2], redis.call("SCARD", membersKey)}
`;

/** ARGV: prefix, name, creator, createdAt, member → {creator, createdAt, members}. */
const REJOIN = `
local name, member = ARGV[2], ARGV[5]
local roomKey = p .. "room:" .. name
if redis.call("EXISTS", roomKey) == 0 then
  local seq = redis.call("INCR", p .. "seq")
  redis.call("HSET", roomKey, "creator", ARGV[3], "createdAt", ARGV[4])
  redis.call("ZADD", p .. "rooms", seq, name)
  redis.call("HINCRBY", p .. "creators", ARGV[3], 1)
end
local membersKey = p .. "members:" .. name
if redis.call("SADD", membersKey, member) == 1 then
  local nk = nodeKey(member)
  if nk then redis.call("SADD", nk, entry(name, member)) end
end
redis.call("ZREM", p .. "empty", name)
local room = redis.call("HMGET", roomKey, "creator", "createdAt")
return {room[1], room[2], redis.call("SCARD", membersKey)}
`;

/** ARGV: prefix, name, member, now → 1 when the member was in the room, else 0. */
const LEAVE = `
local name, member = ARGV[2], ARGV[3]
if redis.call("SREM", p .. "members:" .. name, member) == 0 then return 0 end
local nk = nodeKey(member)
if nk then redis.call("SREM", nk, entry(name, member)) end
markEmptyIfEmpty(name, ARGV[4])
return 1
`;

/** ARGV: prefix, name, by → an error code or {creator, createdAt, members} of the closed room. */
const CLOSE = `
local name = ARGV[2]
local room = redis.call("HMGET", p .. "room:" .. name, "creator", "createdAt")
if not room[1] then return "room_not_found" end
if room[1] ~= ARGV[3] then return "not_room_creator" end
local count = redis.call("SCARD", p .. "members:" .. name)
removeRoom(name)
return {room[1], room[2], count}
`;

/** ARGV: prefix, name → nil or {creator, createdAt, members}. */
const GET = `
local name = ARGV[2]
local room = redis.call("HMGET", p .. "room:" .. name, "creator", "createdAt")
if not room[1] then return false end
return {room[1], room[2], redis.call("SCARD", p .. "members:" .. name)}
`;

/** ARGV: prefix → {name, creator, createdAt, members, ...}, oldest first. */
const LIST = `
local out = {}
for _, name in ipairs(redis.call("ZRANGE", p .. "rooms", 0, -1)) do
  local room = redis.call("HMGET", p .. "room:" .. name, "creator", "createdAt")
  if room[1] then
    out[#out + 1] = name
    out[#out + 1] = room[1]
    out[#out + 1] = room[2]
    out[#out + 1] = redis.call("SCARD", p .. "members:" .. name)
  end
end
return out
`;

/** ARGV: prefix, cutoff (rooms empty since at most this) → names removed. */
const SWEEP = `
local names = redis.call("ZRANGEBYSCORE", p .. "empty", "-inf", ARGV[2])
for _, name in ipairs(names) do removeRoom(name) end
return names
`;

/** ARGV: prefix, nodeId, now → members removed. */
const PURGE_NODE = `
local head, now = ARGV[2] .. ":", ARGV[3]
local nk = nodeKey(head)
local removed = 0
for _, e in ipairs(redis.call("SMEMBERS", nk)) do
  local c = string.find(e, ":", 1, true)
  local len = tonumber(string.sub(e, 1, c - 1))
  local name = string.sub(e, c + 1, c + len)
  local member = string.sub(e, c + len + 1)
  if string.sub(member, 1, #head) == head then
    redis.call("SREM", nk, e)
    if redis.call("SREM", p .. "members:" .. name, member) == 1 then
      removed = removed + 1
      markEmptyIfEmpty(name, now)
    end
  end
end
return removed
`;

const SCRIPTS = {
  create: new Script(CREATE, COMMON),
  join: new Script(JOIN, COMMON),
  rejoin: new Script(REJOIN, COMMON),
  leave: new Script(LEAVE, COMMON),
  close: new Script(CLOSE, COMMON),
  get: new Script(GET, COMMON),
  list: new Script(LIST, COMMON),
  sweep: new Script(SWEEP, COMMON),
  purgeNode: new Script(PURGE_NODE, COMMON),
};

/** A command with no answer after this long (a silent network) counts as unavailable. */
export const DEFAULT_TIMEOUT_MS = 5_000;

export interface RedisRegistryOptions {
  /** Rejects with RegistryUnavailableError when Redis has not answered in this long. */
  timeoutMs?: number;
}

function bad(what: string, value: unknown): Error {
  return new Error(`unexpected Redis reply for ${what}: ${JSON.stringify(value)}`);
}

function asArray(what: string, v: unknown): unknown[] {
  if (!Array.isArray(v)) throw bad(what, v);
  return v;
}

function asString(what: string, v: unknown): string {
  if (typeof v !== "string") throw bad(what, v);
  return v;
}

function asNumber(what: string, v: unknown): number {
  if (typeof v !== "number") throw bad(what, v);
  return v;
}

/** `{creator, createdAt, members}` at `at` in a script's reply. */
function roomAt(what: string, name: string, row: unknown[], at = 0): RoomInfo {
  return {
    name,
    creator: asString(what, row[at]),
    createdAt: Number(asString(what, row[at + 1])),
    members: asNumber(what, row[at + 2]),
  };
}

export class RedisRoomRegistry implements RoomRegistry {
  private readonly runner: ScriptRunner;

  /**
   * `client` is connected already and stays the caller's (dispose does not close it). Create it
   * with `enableOfflineQueue: false`, so that commands while Redis is down reject at once
   * instead of waiting for the reconnect; `timeoutMs` covers a Redis that is silent.
   */
  constructor(
    client: RedisClient,
    private readonly limits: RoomLimits,
    private readonly prefix = "kabar:",
    options: RedisRegistryOptions = {},
  ) {
    this.runner = new ScriptRunner(
      client,
      (message, cause) => new RegistryUnavailableError(message, { cause }),
      options.timeoutMs ?? DEFAULT_TIMEOUT_MS,
    );
  }

  /** Loads every script (SCRIPT LOAD) so the first calls are one EVALSHA each. Optional. */
  load(): Promise<void> {
    return this.runner.load(Object.values(SCRIPTS));
  }

  async create(name: string, creator: string, now: number): Promise<CreateResult> {
    const res = await this.run(SCRIPTS.create, [
      name,
      creator,
      String(now),
      String(this.limits.maxRooms),
      String(this.limits.maxRoomsPerUser),
    ]);
    if (res === "room_exists" || res === "max_rooms" || res === "max_rooms_per_user") {
      return { ok: false, error: res };
    }
    if (res !== 0) throw bad("create", res);
    return { ok: true, room: { name, creator, createdAt: now, members: 0 } };
  }

  async join(name: string, member: string, _now: number): Promise<RoomInfo | undefined> {
    const res = await this.run(SCRIPTS.join, [name, member]);
    return res === null ? undefined : roomAt("join", name, asArray("join", res));
  }

  async rejoin(room: Omit<RoomInfo, "members">, member: string, _now: number): Promise<RoomInfo> {
    const res = await this.run(SCRIPTS.rejoin, [
      room.name,
      room.creator,
      String(room.createdAt),
      member,
    ]);
    return roomAt("rejoin", room.name, asArray("rejoin", res));
  }

  async leave(name: string, member: string, now: number): Promise<void> {
    await this.run(SCRIPTS.leave, [name, member, String(now)]);
  }

  async close(name: string, by: string): Promise<CloseResult> {
    const res = await this.run(SCRIPTS.close, [name, by]);
    if (res === "room_not_found" || res === "not_room_creator") return { ok: false, error: res };
    return { ok: true, room: roomAt("close", name, asArray("close", res)) };
  }

  async get(name: string): Promise<RoomInfo | undefined> {
    const res = await this.run(SCRIPTS.get, [name]);
    return res === null ? undefined : roomAt("get", name, asArray("get", res));
  }

  async list(): Promise<RoomInfo[]> {
    const row = asArray("list", await this.run(SCRIPTS.list, []));
    const rooms: RoomInfo[] = [];
    for (let i = 0; i < row.length; i += 4) {
      rooms.push(roomAt("list", asString("list", row[i]), row, i + 1));
    }
    return rooms;
  }

  async sweep(now: number, ttlMs: number): Promise<string[]> {
    const res = asArray("sweep", await this.run(SCRIPTS.sweep, [String(now - ttlMs)]));
    return res.map((name) => asString("sweep", name));
  }

  async purgeNode(nodeId: string, now: number): Promise<number> {
    return asNumber("purgeNode", await this.run(SCRIPTS.purgeNode, [nodeId, String(now)]));
  }

  /** The rooms live on in Redis for the other nodes; the client is the caller's to close. */
  async dispose(): Promise<void> {}

  private run(script: Script, args: string[]): Promise<unknown> {
    return this.runner.run(script, [this.prefix, ...args]);
  }
}
