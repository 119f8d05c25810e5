// Load client of the reconnect storm (bench/storm.ts): one Bun process holding every storm socket
// (bench/history-ws.ts: raw WebSockets, JSON frames parsed), driven over stdin/stdout one JSON line
// at a time (bench/line-agent.ts). Socket i sits in room i % R as that room's member k = ⌊i / R⌋;
// members k < M/2 go to node A (the survivor), the rest to node B (the one killed), and the first
// `senders` members of each room (all on A) send. Every socket keeps the full list of seqs it got
// for its room. When a socket closes it reconnects to node A at once with `join_room` + `since`
// (the epoch and last seq it saw), retrying after `retryMs`, at most `maxAttempts` times and
// within `giveUpMs`. `collect` checks each list is exactly 1..N (N: the messages sent to the room)
// and answers the times from the kill (on the harness's clock: wall-clock ms) until each
// reconnected socket was back in the room and had caught up with the room's latest seq.
import { readFileSync } from "node:fs";
import { StormSocket } from "./history-ws.ts";
import { serveLines } from "./line-serve.ts";
import { ensureRooms, frameType, pool } from "./sockets.ts";
import { round } from "./stats.ts";

export interface StormOpenCmd {
  op: "open";
  /** A JSON file `{ "tokens": string[] }`: socket i uses tokens[i]. */
  file: string;
  rooms: string[];
  members: number;
  senders: number;
  /** Destination and source addresses: socket i uses hosts[i % H] and sources[i % S]. */
  hosts: string[];
  sources: string[];
  portA: number;
  portB: number;
  concurrency: number;
  timeoutMs: number;
  reconnect: { maxAttempts: number; retryMs: number; timeoutMs: number; giveUpMs: number };
}
export interface StormOpenResult {
  opened: number;
  failed: number;
  onA: number;
  onB: number;
  ms: number;
  errors: string[];
}
export interface StormSendCmd {
  op: "send";
  /** Messages per second each sender sends (phases spread evenly). */
  perSenderMsgPerSec: number;
  /** Safety bounds: stop by itself after this many messages or this long. */
  maxMessages: number;
  maxMs: number;
}
export interface StormStopResult {
  sent: number;
  sentPerRoom: number[];
  ms: number;
}
export interface StormCollectCmd {
  op: "collect";
  /** Wall-clock ms (performance.timeOrigin + now) when the harness sent SIGKILL. */
  killAt: number;
  /** Wait at most this long for every socket to hold every sent message. */
  drainMs: number;
}
export interface TimeSummary {
  count: number;
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
}
export interface StormCollectResult {
  sockets: number;
  /** Sockets that closed (the killed node's, and any other that closed unexpectedly). */
  closed: number;
  closedOnA: number;
  /** Closed sockets back in their room (`room_joined` after the close). */
  rejoined: number;
  /** Of those, `room_joined` said `"recovered": true`. */
  recovered: number;
  notRecovered: number;
  /** Closed sockets that never got back in (attempts or time ran out). */
  gaveUp: number;
  attempts: number;
  maxAttempts: number;
  /** Sockets whose seq list is not exactly 1..N, and the holes and repeats over all sockets. */
  socketsWithGaps: number;
  holes: number;
  socketsWithDuplicates: number;
  duplicates: number;
  /** Sockets that saw another epoch than the room's first. */
  epochChanges: number;
  /** Sockets whose list is whole but ends before the room's last message. */
  incomplete: number;
  sentPerRoom: number[];
  /** The highest seq any socket got, per room (equals sentPerRoom when nothing was refused). */
  roomTop: number[];
  deliveries: number;
  /** Messages received per second from 1 s after sending started until the kill. */
  deliveriesPerSecBeforeKill: number;
  /** Replayed messages (seq ≤ room_joined's seq) per rejoined socket, summed. */
  replayed: number;
  /** From the kill: close seen, back in the room, caught up with the room's latest. */
  closeSeen: TimeSummary;
  rejoinedAt: TimeSummary;
  caughtUp: TimeSummary;
  /** Kill → every reconnected socket caught up; null when one did not. */
  allCaughtUpMs: number | null;
  errorFrames: number;
  errors: string[];
}

const log = (msg: string) => process.stderr.write(`[storm-client ${process.pid}] ${msg}\n`);
/** Wall-clock milliseconds with sub-millisecond resolution (comparable across processes). */
const wall = () => performance.timeOrigin + performance.now();

interface Member {
  i: number;
  room: number;
  onA: boolean;
  sender: boolean;
  token: string;
  ws: StormSocket | null;
  epoch: string | null;
  last: number;
  seqs: number[];
  duplicates: number;
  holes: number;
  epochChanged: boolean;
  /** Stage of the current connection: joining waits for room_joined. */
  live: boolean;
  closes: number;
  closedAt: number | null;
  attempts: number;
  rejoinedAt: number | null;
  joinedSeq: number;
  recovered: boolean | null;
  replayed: number;
  caughtUpAt: number | null;
  gaveUp: boolean;
}

const members: Member[] = [];
let roomTop: number[] = [];
let sentPerRoom: number[] = [];
let open: StormOpenCmd | null = null;
let errorFrames = 0;
const errors = new Set<string>();
let received = 0;
/** Messages received per 100 ms since sending started (bounded by the send's maxMs). */
let buckets: Uint32Array = new Uint32Array(0);
let sendStartWall = 0;
let ticker: ReturnType<typeof setInterval> | null = null;
let sent = 0;
let sendStarted = 0;
const timers = new Set<ReturnType<typeof setTimeout>>();

const note = (e: string) => {
  if (errors.size < 10) errors.add(e.slice(0, 200));
};

function later(fn: () => void, ms: number): void {
  const t = setTimeout(() => {
    timers.delete(t);
    fn();
  }, ms);
  timers.add(t);
}

function onMessage(m: Member, f: { seq?: unknown; epoch?: unknown; room?: unknown }): void {
  const seq = typeof f.seq === "number" ? f.seq : -1;
  if (seq < 1) {
    note(`message without seq on socket ${m.i}`);
    return;
  }
  received++;
  if (sendStartWall > 0) {
    const b = Math.floor((wall() - sendStartWall) / 100);
    if (b >= 0 && b < buckets.length) buckets[b] = (buckets[b] ?? 0) + 1;
  }
  if (typeof f.epoch === "string" && m.epoch !== null && f.epoch !== m.epoch) m.epochChanged = true;
  m.seqs.push(seq);
  if (seq <= m.last) m.duplicates++;
  else m.holes += seq - m.last - 1;
  if (seq > m.last) m.last = seq;
  if (seq > (roomTop[m.room] ?? 0)) roomTop[m.room] = seq;
  if (m.rejoinedAt !== null) {
    if (seq <= m.joinedSeq) m.replayed++;
    checkCaughtUp(m);
  }
}

function checkCaughtUp(m: Member): void {
  if (m.caughtUpAt !== null || m.rejoinedAt === null) return;
  if (m.last >= Math.max(roomTop[m.room] ?? 0, m.joinedSeq)) m.caughtUpAt = wall();
}

/**
 * Socket i's connection: welcome, then `join_room` (with `since` when `since` is set), then live.
 * Resolves once room_joined came; rejects (and closes) on anything else, a close or the timeout.
 */
function connect(m: Member, port: number, since: boolean, timeoutMs: number): Promise<void> {
  const o = open as StormOpenCmd;
  const host = o.hosts[m.i % o.hosts.length] ?? "127.0.0.1";
  const source = o.sources.length ? (o.sources[m.i % o.sources.length] ?? null) : null;
  const deadline = performance.now() + timeoutMs;
  return StormSocket.connect(host, port, source, `/api/v1/ws?token=${m.token}`, timeoutMs).then(
    (ws) =>
      new Promise<void>((resolve, reject) => {
        let stage: "welcome" | "join" | "live" = "welcome";
        const timer = setTimeout(
          () => fail(`timeout waiting for ${stage}`),
          Math.max(1, deadline - performance.now()),
        );
        function fail(why: string) {
          if (stage === "live") return;
          stage = "live";
          clearTimeout(timer);
          ws.onclose = null;
          ws.close();
          reject(new Error(why));
        }
        ws.onclose = () => fail(`closed while waiting for ${stage}`);
        ws.listen((text) => {
          if (stage === "live") {
            const type = frameType(text);
            if (type === "message") onMessage(m, JSON.parse(text));
            else if (type === "error") {
              errorFrames++;
              note(`socket ${m.i}: ${text.slice(0, 150)}`);
            }
            return;
          }
          const f = JSON.parse(text) as Record<string, unknown>;
          if (stage === "welcome") {
            if (f.type !== "welcome") return fail(`expected welcome, got ${text.slice(0, 120)}`);
            stage = "join";
            const room = o.rooms[m.room] ?? "";
            const join: Record<string, unknown> = { type: "join_room", room_name: room };
            if (since) join.since = { epoch: m.epoch ?? "", seq: m.last };
            ws.send(JSON.stringify(join));
            return;
          }
          if (f.type === "error") return fail(`join: ${text.slice(0, 150)}`);
          if (f.type !== "room_joined") return; // room_update and the like
          clearTimeout(timer);
          stage = "live";
          const epoch = typeof f.epoch === "string" ? f.epoch : null;
          if (m.epoch === null) m.epoch = epoch;
          else if (epoch !== m.epoch) m.epochChanged = true;
          m.ws = ws;
          m.live = true;
          ws.onclose = () => closed(m);
          if (since) {
            m.rejoinedAt = wall();
            m.joinedSeq = typeof f.seq === "number" ? f.seq : 0;
            m.recovered = f.recovered === true;
            checkCaughtUp(m);
          }
          resolve();
        });
      }),
  );
}

/** A live socket closed: reconnect to node A with `since`, bounded in attempts and time. */
function closed(m: Member): void {
  const o = open as StormOpenCmd;
  m.live = false;
  m.ws = null;
  m.closes++;
  m.closedAt ??= wall();
  const r = o.reconnect;
  const giveUpAt = performance.now() + r.giveUpMs;
  const attempt = () => {
    if (m.attempts >= r.maxAttempts || performance.now() > giveUpAt) {
      m.gaveUp = true;
      note(`socket ${m.i}: gave up after ${m.attempts} attempts`);
      return;
    }
    m.attempts++;
    connect(m, o.portA, true, r.timeoutMs).catch((e) => {
      note(`reconnect ${m.i}: ${e instanceof Error ? e.message : String(e)}`);
      later(attempt, r.retryMs);
    });
  };
  attempt();
}

async function openAll(cmd: StormOpenCmd): Promise<StormOpenResult> {
  if (open !== null) throw new Error("already open");
  open = cmd;
  const tokens = (JSON.parse(readFileSync(cmd.file, "utf8")) as { tokens: string[] }).tokens;
  const n = cmd.rooms.length * cmd.members;
  if (tokens.length < n) throw new Error(`${tokens.length} tokens for ${n} sockets`);
  roomTop = cmd.rooms.map(() => 0);
  sentPerRoom = cmd.rooms.map(() => 0);
  const start = performance.now();
  await ensureRooms(
    { hosts: cmd.hosts, port: cmd.portA, tokens: tokens.slice(0, 1) },
    cmd.rooms,
    cmd.timeoutMs,
  );
  for (let i = 0; i < n; i++) {
    const k = Math.floor(i / cmd.rooms.length);
    members.push({
      i,
      room: i % cmd.rooms.length,
      onA: k < cmd.members / 2,
      sender: k < cmd.senders,
      token: tokens[i] as string,
      ws: null,
      epoch: null,
      last: 0,
      seqs: [],
      duplicates: 0,
      holes: 0,
      epochChanged: false,
      live: false,
      closes: 0,
      closedAt: null,
      attempts: 0,
      rejoinedAt: null,
      joinedSeq: 0,
      recovered: null,
      replayed: 0,
      caughtUpAt: null,
      gaveUp: false,
    });
  }
  let failed = 0;
  let opened = 0;
  const progress = setInterval(() => log(`open ${opened}/${n}`), 2000);
  try {
    await pool(n, cmd.concurrency, async (i) => {
      const m = members[i] as Member;
      try {
        await connect(m, m.onA ? cmd.portA : cmd.portB, false, cmd.timeoutMs);
        opened++;
      } catch (e) {
        failed++;
        note(`open ${i}: ${e instanceof Error ? e.message : String(e)}`);
      }
    });
  } finally {
    clearInterval(progress);
  }
  return {
    opened,
    failed,
    onA: members.filter((m) => m.onA && m.live).length,
    onB: members.filter((m) => !m.onA && m.live).length,
    ms: round(performance.now() - start, 1),
    errors: [...errors],
  };
}

function send(cmd: StormSendCmd): { senders: number } {
  if (open === null) throw new Error("not open");
  if (ticker !== null) throw new Error("already sending");
  const senders = members.filter((m) => m.sender);
  if (senders.length === 0) throw new Error("no senders");
  const periodMs = 1000 / cmd.perSenderMsgPerSec;
  const next = senders.map((_, k) => (k * periodMs) / senders.length);
  const count = senders.map(() => 0);
  sendStartWall = wall();
  sendStarted = performance.now();
  buckets = new Uint32Array(Math.ceil(cmd.maxMs / 100) + 100);
  ticker = setInterval(() => {
    const t = performance.now() - sendStarted;
    if (t > cmd.maxMs || sent >= cmd.maxMessages) return stopSending();
    senders.forEach((m, k) => {
      // At most a few per tick: a stalled tick catches up without a burst out of bounds.
      for (let b = 0; b < 5 && (next[k] ?? 0) <= t && sent < cmd.maxMessages; b++) {
        next[k] = (next[k] ?? 0) + periodMs;
        if (m.ws === null || !m.live) continue;
        const c = (count[k] ?? 0) + 1;
        count[k] = c;
        m.ws.send(`{"type":"message","content":"s${m.i}|${c}"}`);
        sentPerRoom[m.room] = (sentPerRoom[m.room] ?? 0) + 1;
        sent++;
      }
    });
  }, 5);
  return { senders: senders.length };
}

function stopSending(): StormStopResult {
  if (ticker !== null) clearInterval(ticker);
  ticker = null;
  return { sent, sentPerRoom: [...sentPerRoom], ms: round(performance.now() - sendStarted, 1) };
}

function summary(xs: number[]): TimeSummary {
  const s = [...xs].sort((a, b) => a - b);
  const q = (p: number) => s[Math.min(s.length - 1, Math.max(0, Math.ceil(p * s.length) - 1))] ?? 0;
  return {
    count: s.length,
    p50Ms: round(q(0.5), 1),
    p99Ms: round(q(0.99), 1),
    maxMs: round(s[s.length - 1] ?? 0, 1),
  };
}

async function collect(cmd: StormCollectCmd): Promise<StormCollectResult> {
  const deadline = performance.now() + cmd.drainMs;
  const done = () =>
    members.every((m) => m.gaveUp || m.last >= (sentPerRoom[m.room] ?? 0)) &&
    members.every((m) => m.closes === 0 || m.gaveUp || m.live);
  while (performance.now() < deadline && !done()) await Bun.sleep(20);
  let socketsWithGaps = 0;
  let holes = 0;
  let socketsWithDuplicates = 0;
  let duplicates = 0;
  let incomplete = 0;
  for (const m of members) {
    const final = sentPerRoom[m.room] ?? 0;
    const seen = new Set(m.seqs);
    const dup = m.seqs.length - seen.size;
    let missing = 0;
    for (let s = 1; s <= Math.max(final, m.last); s++) if (!seen.has(s)) missing++;
    if (dup > 0) {
      socketsWithDuplicates++;
      duplicates += dup;
    }
    // A hole: a seq missing below the socket's last one. Missing only at the end: incomplete.
    let inner = 0;
    for (let s = 1; s < m.last; s++) if (!seen.has(s)) inner++;
    if (inner > 0) {
      socketsWithGaps++;
      holes += inner;
    } else if (missing > 0) incomplete++;
  }
  const closedOnes = members.filter((m) => m.closes > 0);
  const back = closedOnes.filter((m) => m.rejoinedAt !== null);
  const fromKill = (t: number | null) => (t === null ? Number.NaN : t - cmd.killAt);
  const caught = back.filter((m) => m.caughtUpAt !== null);
  const killBucket = Math.floor((cmd.killAt - sendStartWall) / 100);
  let before = 0;
  for (let b = 10; b < Math.min(killBucket, buckets.length); b++) before += buckets[b] ?? 0;
  const beforeSec = Math.max(0.1, (killBucket - 10) / 10);
  return {
    sockets: members.length,
    closed: closedOnes.length,
    closedOnA: closedOnes.filter((m) => m.onA).length,
    rejoined: back.length,
    recovered: back.filter((m) => m.recovered === true).length,
    notRecovered: back.filter((m) => m.recovered === false).length,
    gaveUp: closedOnes.filter((m) => m.gaveUp && !m.live).length,
    attempts: closedOnes.reduce((a, m) => a + m.attempts, 0),
    maxAttempts: Math.max(0, ...closedOnes.map((m) => m.attempts)),
    socketsWithGaps,
    holes,
    socketsWithDuplicates,
    duplicates,
    epochChanges: members.filter((m) => m.epochChanged).length,
    incomplete,
    sentPerRoom: [...sentPerRoom],
    roomTop: [...roomTop],
    deliveries: received,
    deliveriesPerSecBeforeKill: Math.round(before / beforeSec),
    replayed: back.reduce((a, m) => a + m.replayed, 0),
    closeSeen: summary(closedOnes.map((m) => fromKill(m.closedAt))),
    rejoinedAt: summary(back.map((m) => fromKill(m.rejoinedAt))),
    caughtUp: summary(caught.map((m) => fromKill(m.caughtUpAt))),
    allCaughtUpMs:
      closedOnes.length > 0 && caught.length === closedOnes.length
        ? round(Math.max(...caught.map((m) => fromKill(m.caughtUpAt))), 1)
        : null,
    errorFrames,
    errors: [...errors],
  };
}

type Cmd =
  | ({ id: number } & StormOpenCmd)
  | ({ id: number } & StormSendCmd)
  | { id: number; op: "stop" }
  | ({ id: number } & StormCollectCmd)
  | { id: number; op: "exit" };

async function run(cmd: Cmd): Promise<unknown> {
  switch (cmd.op) {
    case "open":
      return openAll(cmd);
    case "send":
      return send(cmd);
    case "stop":
      return stopSending();
    case "collect":
      return collect(cmd);
    case "exit":
      return {};
  }
}

function closeEverything(): void {
  stopSending();
  for (const t of timers) clearTimeout(t);
  timers.clear();
  for (const m of members) {
    m.gaveUp = true;
    const ws = m.ws;
    if (ws) {
      ws.onclose = null;
      ws.close();
    }
  }
}

if (import.meta.main) serveLines<Cmd>(run, closeEverything);
