// Room history in Redis: cluster mode, every node sees one list of messages per room, and it outlives the
// node that wrote it.
//
// Every method is ONE Lua script or command (atomic, one round trip: EVALSHA, with EVAL once when
// Redis answers NOSCRIPT). `append` gives the seq, stores the entry and — with `announce` —
// publishes it in that same step, so two nodes appending to one room can never interleave: the
// subscribers of a room's channel receive its messages in seq order. Appends made in one
// event-loop turn are queued and sent as ONE script call (setImmediate): one round trip, and per
// room one HINCRBY, one RPUSH of all its messages and one PUBLISH for the lot (the node sends the
// publish's body ready-made; the script only puts seq and epoch in front). Redis pays per call far
// more than per message (measured here: ~40 µs of redis-server CPU for a lone EVALSHA), and per
// command inside a script more than per byte: a stream took one XADD per message, 6.1 µs of
// Redis CPU per message in batches of 4 × 4, this list 3.6–4.3 µs.
//
// Keys, under `prefix` (default `kabar:`; one Redis, not Redis Cluster — the scripts build keys
// from the prefix):
//   {p}hmeta:{room}  hash  e: epoch, s: latest seq (0 before the first message)
//   {p}hlist:{room}  list  the newest kept messages' ChatMessage JSON, oldest first; the last one
//                          is seq s, so the one at index -k is seq s - k + 1 (every append that
//                          raises s pushes its messages in the same step); LTRIM keeps `size`
// Both expire `ttlMs` after the room's last append (PEXPIRE on every append); a meta hash made by
// position/since/page expires `ttlMs` after it was made. When the meta hash is missing (expired,
// dropped, Redis restarted or evicted it) the next call makes a new epoch from the node's
// candidate and deletes any list left over, so seq restarts at 1 in a new epoch.
//
// Redis down or silent: every method rejects with BrokerUnavailableError (the ScriptRunner's
// unavailable factory), which the handlers answer as `unavailable`.
import type { RedisClient } from "bun";
import { BrokerUnavailableError } from "../cluster/broker.ts";
import { Script, ScriptRunner } from "../cluster/redis-script.ts";
import type { ChatMessage } from "../protocol.ts";
import type { Announce, History, HistoryLimits, Position, SeqMessage, Since } from "./history.ts";
import { newEpoch } from "./memory.ts";

/** Shared by every script. ARGV: prefix, room, candidate epoch, ttl (ms), then the script's own. */
const COMMON = `
local p, room, candidate, ttl = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local mk, hk = p .. "hmeta:" .. room, p .. "hlist:" .. room
-- The room's epoch and latest seq; a new epoch (the candidate, seq 0) when it has none.
local function meta()
  local m = redis.call("HMGET", mk, "e", "s")
  if m[1] then return m[1], tonumber(m[2]) or 0 end
  redis.call("DEL", hk)
  redis.call("HSET", mk, "e", candidate, "s", 0)
  redis.call("PEXPIRE", mk, ttl)
  return candidate, 0
end
`;

/**
 * Appends in batches, without COMMON. ARGV: prefix, ttl (ms), size, then per room group: room,
 * candidate epoch, n, publish ("1"/"0"), [channel, head, mid, open, body, close when publishing],
 * then the n messages' JSON → one {first seq, epoch} per group. Published: head, first seq, mid,
 * epoch, open, body, close.
 */
const APPEND = `
local p, ttl, size = ARGV[1], ARGV[2], tonumber(ARGV[3])
local out = {}
local i = 4
while ARGV[i] do
  local room, candidate, n, pub = ARGV[i], ARGV[i + 1], tonumber(ARGV[i + 2]), ARGV[i + 3] == "1"
  i = i + 4
  local channel, head, mid, open, body, close
  if pub then
    channel, head, mid, open, body, close =
      ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3], ARGV[i + 4], ARGV[i + 5]
    i = i + 6
  end
  local mk, hk = p .. "hmeta:" .. room, p .. "hlist:" .. room
  local epoch = redis.call("HGET", mk, "e")
  if not epoch then
    epoch = candidate
    redis.call("DEL", hk)
    redis.call("HSET", mk, "e", epoch)
  end
  local first = redis.call("HINCRBY", mk, "s", n) - n + 1
  redis.call("PEXPIRE", mk, ttl)
  if size > 0 then
    redis.call("RPUSH", hk, unpack(ARGV, i, i + n - 1))
    redis.call("LTRIM", hk, -size, -1)
    redis.call("PEXPIRE", hk, ttl)
  end
  i = i + n
  if pub then
    redis.call("PUBLISH", channel, head .. first .. mid .. epoch .. open .. body .. close)
  end
  out[#out + 1] = {first, epoch}
end
return out
`;

/** → {epoch, seq}. */
const POSITION = `
local epoch, top = meta()
return {epoch, top}
`;

/**
 * ARGV[5..]: epoch, next (since.seq + 1, an integer >= 1) → {0, epoch, top} when it cannot be
 * guaranteed, else {1, epoch, top, the messages of seq next … top}.
 */
const SINCE = `
local epoch, top = meta()
local first_seq = tonumber(ARGV[6])
if ARGV[5] ~= epoch or first_seq > top + 1 then return {0, epoch, top} end
if first_seq == top + 1 then return {1, epoch, top, {}} end
if first_seq < top - redis.call("LLEN", hk) + 1 then return {0, epoch, top} end
return {1, epoch, top, redis.call("LRANGE", hk, first_seq - top - 1, -1)}
`;

/**
 * ARGV[5..]: highest seq wanted ("+": any), count → {epoch, top, first seq, the messages of seq
 * first … (at most count, the newest up to the highest wanted), oldest first}.
 */
const PAGE = `
local epoch, top = meta()
local count = tonumber(ARGV[6])
local hi = top
if ARGV[5] ~= "+" then hi = math.min(top, tonumber(ARGV[5])) end
local lo = math.max(top - redis.call("LLEN", hk) + 1, hi - count + 1)
if count < 1 or hi < lo then return {epoch, top, 0, {}} end
return {epoch, top, lo, redis.call("LRANGE", hk, lo - top - 1, hi - top - 1)}
`;

const SCRIPTS = {
  append: new Script(APPEND),
  position: new Script(POSITION, COMMON),
  since: new Script(SINCE, COMMON),
  page: new Script(PAGE, COMMON),
};

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

/** A kept message's JSON, with its place in the room's stream. */
function entryMessage(what: string, entry: unknown, seq: number, epoch: string): SeqMessage {
  const m = JSON.parse(asString(what, entry)) as ChatMessage;
  return {
    id: m.id,
    room: m.room,
    from: m.from,
    content: m.content,
    sent_at: m.sent_at,
    seq,
    epoch,
  };
}

/** Appends queued beyond this many are sent at once instead of at the end of the turn. */
const MAX_BATCH = 512;

interface Queued {
  m: ChatMessage;
  json: string;
  /** What follows this message's JSON in the room's publish, "" without announce. */
  itemTail: string;
  resolve: (m: SeqMessage) => void;
  reject: (e: unknown) => void;
}

/**
 * The appends queued for one room (and one announce channel), in the order they were made; the
 * constant parts of the publish come from the first one's announce.
 */
interface Group {
  room: string;
  announce: Announce | undefined;
  items: Queued[];
}

const copy = (m: ChatMessage): ChatMessage => ({
  id: m.id,
  room: m.room,
  from: m.from,
  content: m.content,
  sent_at: m.sent_at,
});

export class RedisHistory implements History {
  private readonly runner: ScriptRunner;
  private readonly queued = new Map<string, Group>();
  private queuedCount = 0;
  private flushing: ReturnType<typeof setImmediate> | null = null;
  private readonly ttl: string;
  private readonly size: string;

  /**
   * `client` is connected already and stays the caller's (dispose does not close it); make it
   * with `enableOfflineQueue: false` (connectRedis does) so that calls while Redis is down reject
   * at once; `timeoutMs` covers a Redis that is silent. `limits.maxBytes` is not used: Redis
   * keeps `size` messages per room and its own memory is Redis's to bound.
   */
  constructor(
    client: RedisClient,
    limits: HistoryLimits,
    private readonly prefix = "kabar:",
    timeoutMs = 5_000,
  ) {
    this.runner = new ScriptRunner(
      client,
      (message, cause) => new BrokerUnavailableError(cause ?? message),
      timeoutMs,
    );
    this.ttl = String(Math.max(1, Math.ceil(limits.ttlMs)));
    this.size = String(Math.max(0, Math.floor(limits.size)));
  }

  /** Loads every script (SCRIPT LOAD) so the first calls are one EVALSHA each. Optional. */
  load(): Promise<void> {
    return this.runner.load(Object.values(SCRIPTS));
  }

  /**
   * `m` is serialised once here; the returned SeqMessage is a copy (`m` is not mutated). Queued
   * until the end of this event-loop turn, then sent with the turn's other appends as one call.
   */
  append(room: string, m: ChatMessage, _now: number, announce?: Announce): Promise<SeqMessage> {
    return new Promise<SeqMessage>((resolve, reject) => {
      const key = announce === undefined ? room : `${room}\u0000${announce.channel}`;
      let group = this.queued.get(key);
      if (group === undefined) {
        group = { room, announce, items: [] };
        this.queued.set(key, group);
      }
      const itemTail = announce?.itemTail ?? "";
      group.items.push({ m, json: JSON.stringify(m), itemTail, resolve, reject });
      this.queuedCount++;
      if (this.queuedCount >= MAX_BATCH) this.flush();
      else if (this.flushing === null) this.flushing = setImmediate(this.flushSoon);
    });
  }

  private readonly flushSoon = () => this.flush();

  /**
   * Sends every queued append as one script call. (Holding them while a call is in flight, to
   * make batches bigger, measured worse here: 0.60× against 0.64× one node in bench:cluster:quick.)
   */
  private flush(): void {
    if (this.flushing !== null) clearImmediate(this.flushing);
    this.flushing = null;
    if (this.queuedCount === 0) return;
    const groups = [...this.queued.values()];
    this.queued.clear();
    this.queuedCount = 0;
    const args = [this.prefix, this.ttl, this.size];
    for (const { room, announce, items } of groups) {
      args.push(room, newEpoch(), String(items.length));
      if (announce === undefined) args.push("0");
      else {
        args.push("1", announce.channel, announce.head, announce.mid, announce.open);
        let body = "";
        for (let k = 0; k < items.length; k++) {
          const item = items[k] as Queued;
          body += `${k === 0 ? "" : ","}${announce.itemHead}${item.json}${item.itemTail}`;
        }
        args.push(body, announce.close);
      }
      for (const item of items) args.push(item.json);
    }
    this.runner.run(SCRIPTS.append, args).then(
      (reply) => {
        try {
          const placed = asArray("append", reply);
          groups.forEach((group, g) => {
            const [first, epoch] = asArray("append", placed[g]);
            const seq = asNumber("append", first);
            const e = asString("append", epoch);
            group.items.forEach(({ m, resolve }, k) => {
              resolve({ ...copy(m), seq: seq + k, epoch: e });
            });
          });
        } catch (e) {
          for (const group of groups) for (const item of group.items) item.reject(e);
        }
      },
      (e: unknown) => {
        for (const group of groups) for (const item of group.items) item.reject(e);
      },
    );
  }

  async position(room: string, _now: number): Promise<Position> {
    const [epoch, seq] = asArray("position", await this.run(SCRIPTS.position, room, []));
    return { epoch: asString("position", epoch), seq: asNumber("position", seq) };
  }

  async since(room: string, since: Position, now: number): Promise<Since> {
    if (!Number.isSafeInteger(since.seq) || since.seq < 0) {
      return { ok: false, top: await this.position(room, now) };
    }
    const res = asArray(
      "since",
      await this.run(SCRIPTS.since, room, [since.epoch, String(since.seq + 1)]),
    );
    const epoch = asString("since", res[1]);
    const top = { epoch, seq: asNumber("since", res[2]) };
    if (res[0] !== 1) return { ok: false, top };
    const entries = asArray("since", res[3]);
    const messages: SeqMessage[] = new Array(entries.length);
    for (let i = 0; i < entries.length; i++) {
      messages[i] = entryMessage("since", entries[i], since.seq + 1 + i, epoch);
    }
    return { ok: true, messages, top };
  }

  async page(
    room: string,
    before: number | undefined,
    limit: number,
    _now: number,
  ): Promise<{ messages: SeqMessage[]; top: Position }> {
    const hi =
      before === undefined || !(before <= Number.MAX_SAFE_INTEGER)
        ? "+"
        : String(Math.max(0, Math.ceil(before) - 1));
    const count = limit > 0 ? Math.min(Math.floor(limit), 2_147_483_647) : 0;
    const res = asArray("page", await this.run(SCRIPTS.page, room, [hi, String(count)]));
    const epoch = asString("page", res[0]);
    const top = { epoch, seq: asNumber("page", res[1]) };
    const first = asNumber("page", res[2]);
    const entries = asArray("page", res[3]);
    const messages: SeqMessage[] = new Array(entries.length);
    for (let i = 0; i < entries.length; i++)
      messages[i] = entryMessage("page", entries[i], first + i, epoch);
    return { messages, top };
  }

  async drop(room: string): Promise<void> {
    await this.runner.command("DEL", [
      `${this.prefix}hmeta:${room}`,
      `${this.prefix}hlist:${room}`,
    ]);
  }

  /**
   * Sends what is queued; the lists live on in Redis for the other nodes; the client is the
   * caller's to close.
   */
  async dispose(): Promise<void> {
    this.flush();
  }

  private run(script: Script, room: string, rest: string[]): Promise<unknown> {
    return this.runner.run(script, [this.prefix, room, newEpoch(), this.ttl, ...rest]);
  }
}
