// Load client of the soak, the floods and the faults (bench/soak.ts, bench/floods.ts,
// bench/faults.ts): one Bun process driven over stdin/stdout one JSON line at a time
// (bench/line-agent.ts), its sockets bench/history-ws.ts's raw WebSockets from 127.0.0.x source
// addresses. What one process can be asked to do:
// - `open`: R rooms × M steady members (socket i in room i % R as member k = ⌊i / R⌋, on
//   ports[k % P], so a room's members alternate between the nodes); the first `senders` members
//   of each room send. Every member counts, per epoch, the seqs it got (holes and repeats), and
//   times each delivery from the send time the message carries (sender and receivers are in
//   this process: one clock). A member that closes is counted as closed and not reconnected.
// - `send` / `collect`: a paced total message rate over the senders; `collect` stops, waits for
//   every member to hold its room's last message, and answers lost / duplicates / closes.
// - `window`: the latency of the deliveries since the previous `window` (p50 / p99 / max); with
//   `marks` (wall-clock times), also where its tail was sent: the deliveries at or over its p99,
//   and their messages, counted between the marks.
// - `mark` / `recovery`: from a wall-clock time, how long until every live member got a message
//   sent after it (time to recover after a fault).
// - `churn` / `churnStop`: connect → welcome → join one of the churn rooms → close, at a paced
//   rate, or as fast as it goes (rate 0) with `concurrency` in flight; bounded in time and count.
// - `burst`: `count` sockets open and join one room at once, stay `holdMs`, all close.
// - `pump` / `slow`: one socket that keeps a room busy with long messages; then sockets that join
//   it and stop reading (`slow` starts the pump too if it is not running); `slowStatus`: how many readers the server closed (then all stop).
import { readFileSync } from "node:fs";
import { StormSocket } from "./history-ws.ts";
import { serveLines } from "./line-serve.ts";
import { ensureRooms, frameType, pool } from "./sockets.ts";
import { Histogram, type Latency, partOf, round } from "./stats.ts";

export interface Endpoints {
  hosts: string[];
  sources: string[];
  ports: number[];
}
export interface SteadyOpenCmd extends Endpoints {
  op: "open";
  /** A JSON file `{ "tokens": string[] }`; member i uses tokens[(tokenOffset + i) % length]. */
  file: string;
  tokenOffset: number;
  rooms: string[];
  members: number;
  senders: number;
  /** Rooms this process creates (through ports[0]) before joining; `room_exists` is fine. */
  create: string[];
  concurrency: number;
  timeoutMs: number;
}
export interface SteadyOpenResult {
  opened: number;
  failed: number;
  ms: number;
  errors: string[];
}
export interface SteadySendCmd {
  op: "send";
  /** Messages per second over all senders of this process. */
  msgPerSec: number;
  maxMs: number;
}
export interface SteadyCollectCmd {
  op: "collect";
  drainMs: number;
}
export interface SteadyCollectResult {
  sockets: number;
  /** Members whose socket closed during the run (not reconnected; their counts are left out). */
  closed: number;
  /** Messages sent, refused with an error (rate_limited, unavailable …), echoed to the sender. */
  sent: number;
  refused: Record<string, number>;
  echoed: number;
  /** Sent, not refused, never echoed to its (connected) sender: lost without a word. */
  unanswered: number;
  deliveries: number;
  /** Over members that stayed connected: every seq of every epoch of their room they missed. */
  lost: number;
  membersWithLoss: number;
  /** The first members with a loss: which, in which room and epoch (by order seen), how many. */
  losses: {
    member: number;
    room: number;
    port: number;
    epoch: number;
    missed: number;
    top: number;
  }[];
  duplicates: number;
  /** Epochs seen per room, at most (1 unless the room's stream restarted, e.g. Redis lost it). */
  maxEpochs: number;
  errorFrames: number;
  errors: string[];
}
export interface SteadyRecoveryResult {
  /** Members live at the mark, and of those, the ones that got a message sent after it. */
  live: number;
  reached: number;
  /** From the mark until the first such message, p50 and max over the members reached. */
  p50Ms: number | null;
  maxMs: number | null;
}
export interface ChurnStartCmd extends Endpoints {
  op: "churn";
  file: string;
  tokenOffset: number;
  /** Tokens used in turn: tokens[tokenOffset + (n % users)]. */
  users: number;
  rooms: string[];
  /** Operations per second (connect … close); 0: as fast as `concurrency` goes. */
  ratePerSec: number;
  concurrency: number;
  /** Join a room before closing (false: connect, welcome, close). */
  join: boolean;
  maxMs: number;
  maxOps: number;
  timeoutMs: number;
}
export interface ChurnStopResult {
  ops: number;
  /** Every operation that did not complete, `limited` included. */
  failed: number;
  /** Of those, upgrades answered 429 (CONNECT_RATE_PER_IP). */
  limited: number;
  ms: number;
  opsPerSec: number;
  errors: string[];
}
export interface BurstCmd extends Endpoints {
  op: "burst";
  file: string;
  tokenOffset: number;
  count: number;
  room: string;
  concurrency: number;
  holdMs: number;
  timeoutMs: number;
}
export interface BurstResult {
  opened: number;
  failed: number;
  openMs: number;
  received: number;
  errors: string[];
  /** Wall-clock times (ms): the opens began, every socket was in, the closes began. */
  at: { start: number; opened: number; leave: number };
}
export interface SlowCmd extends Endpoints {
  op: "slow";
  file: string;
  tokenOffset: number;
  /** Readers that join the room and stop reading (tokens tokenOffset … tokenOffset + count − 1). */
  count: number;
  room: string;
  /** Makes the room busy: one more socket (the next token) sends `bytes`-long messages at `perSec`. */
  pump: { perSec: number; bytes: number; maxMs: number };
  timeoutMs: number;
}
export interface SlowStatus {
  opened: number;
  /** Slow readers the server closed (backpressure); the rest are closed now. */
  closedByServer: number;
  pumped: number;
}

const log = (msg: string) => process.stderr.write(`[steady-client ${process.pid}] ${msg}\n`);
const wall = () => performance.timeOrigin + performance.now();

interface EpochCount {
  last: number;
  distinct: number;
  duplicates: number;
}
interface Member {
  i: number;
  room: number;
  /** Index in `ports` of the node it is on. */
  port: number;
  sender: boolean;
  ws: StormSocket | null;
  closed: boolean;
  epochs: Map<string, EpochCount>;
  sent: number;
  echoed: number;
  firstAfterMark: number | null;
}

const members: Member[] = [];
let roomNames: string[] = [];
/** Per room: epoch → the highest seq any member here got. */
let tops: Map<string, number>[] = [];
let hist = new Histogram();
/** The same, for the members of every room but the first (the floods' busy room). */
let histOutside = new Histogram();
let deliveries = 0;
let errorFrames = 0;
const refused: Record<string, number> = {};
const errors = new Set<string>();
let markAt = 0;
let sending: ReturnType<typeof setInterval> | null = null;
let sentTotal = 0;

const note = (e: string) => {
  if (errors.size < 10) errors.add(e.slice(0, 200));
};
const readTokens = (file: string): string[] =>
  (JSON.parse(readFileSync(file, "utf8")) as { tokens: string[] }).tokens;
const tokenAt = (tokens: string[], k: number): string => tokens[k % tokens.length] ?? "";
const at = <T>(xs: T[], k: number, fallback: T): T => xs[k % xs.length] ?? fallback;

interface Frame {
  type?: unknown;
  seq?: unknown;
  epoch?: unknown;
  content?: unknown;
  code?: unknown;
}

/**
 * A message frame's seq, epoch and the start of its content, without parsing the whole frame
 * (long messages would make the client, not the server, the slow part): Kabar writes `content`
 * before `"seq":N,"epoch":"…"}` at the end (src/protocol.ts). Any other shape: JSON.parse.
 */
function messageFields(text: string): { seq: number; epoch: string; content: string } {
  const s = text.lastIndexOf(',"seq":');
  const e = text.indexOf(',"epoch":"', s);
  const c = text.indexOf('"content":"');
  if (s > 0 && e > s && c > 0 && text.endsWith('"}')) {
    const close = text.indexOf('"', c + 11);
    return {
      seq: Number(text.slice(s + 7, e)),
      epoch: text.slice(e + 10, text.length - 2),
      content: text.slice(c + 11, Math.min(close, c + 11 + 64)),
    };
  }
  const f = JSON.parse(text) as Frame;
  return {
    seq: typeof f.seq === "number" ? f.seq : -1,
    epoch: typeof f.epoch === "string" ? f.epoch : "",
    content: typeof f.content === "string" ? f.content : "",
  };
}

function onFrame(m: Member, text: string): void {
  const type = frameType(text);
  if (type === "message") {
    const { seq, epoch, content } = messageFields(text);
    // A steady member's message is `s<member>|<count>|<sent at>`; others (flood, pump) count
    // for the seqs only.
    const steady = content.charCodeAt(0) === 115; // "s"
    const bar = content.indexOf("|");
    const bar2 = content.indexOf("|", bar + 1);
    const from = steady ? Number(content.slice(1, bar)) : -1;
    const sentAt = steady ? Number(content.slice(bar2 + 1)) : 0;
    deliveries++;
    const now = wall();
    if (sentAt > 0) {
      hist.add(now - sentAt);
      if (m.room !== 0) histOutside.add(now - sentAt);
      if (sentAts.length < TAIL_RECORDS) {
        sentAts.push(sentAt);
        latencies.push(now - sentAt);
      }
    }
    if (from === m.i) m.echoed++;
    if (markAt > 0 && m.firstAfterMark === null && sentAt >= markAt) m.firstAfterMark = now;
    let e = m.epochs.get(epoch);
    if (e === undefined) {
      e = { last: 0, distinct: 0, duplicates: 0 };
      m.epochs.set(epoch, e);
    }
    if (seq <= e.last) e.duplicates++;
    else {
      e.last = seq;
      e.distinct++;
    }
    const top = tops[m.room] as Map<string, number>;
    if (seq > (top.get(epoch) ?? 0)) top.set(epoch, seq);
  } else if (type === "error") {
    errorFrames++;
    const code = /"code":"([a-z_]+)"/.exec(text)?.[1] ?? "other";
    refused[code] = (refused[code] ?? 0) + 1;
    if (code !== "rate_limited") note(`member ${m.i}: ${text.slice(0, 150)}`);
  }
}

/** Connects, waits for welcome, joins `room` (null: none); resolves with the live socket. */
function connectJoined(
  e: Endpoints,
  i: number,
  port: number,
  token: string,
  room: string | null,
  timeoutMs: number,
): Promise<StormSocket> {
  const host = at(e.hosts, i, "127.0.0.1");
  const source = e.sources.length ? at(e.sources, i, "127.0.0.1") : null;
  return StormSocket.connect(host, port, source, `/api/v1/ws?token=${token}`, timeoutMs).then(
    (ws) =>
      new Promise<StormSocket>((resolve, reject) => {
        let stage: "welcome" | "join" | "live" = "welcome";
        const timer = setTimeout(() => fail(`timeout waiting for ${stage}`), timeoutMs);
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
          const type = frameType(text);
          if (stage === "welcome") {
            if (type !== "welcome") return fail(`expected welcome, got ${text.slice(0, 120)}`);
            if (room === null) {
              stage = "live";
              clearTimeout(timer);
              return resolve(ws);
            }
            stage = "join";
            ws.send(JSON.stringify({ type: "join_room", room_name: room }));
          } else if (stage === "join") {
            if (type === "error") return fail(`join: ${text.slice(0, 150)}`);
            if (type !== "room_joined") return;
            stage = "live";
            clearTimeout(timer);
            resolve(ws);
          }
        });
      }),
  );
}

async function open(cmd: SteadyOpenCmd): Promise<SteadyOpenResult> {
  if (members.length > 0) throw new Error("already open");
  const tokens = readTokens(cmd.file);
  const start = performance.now();
  roomNames = cmd.rooms;
  tops = cmd.rooms.map(() => new Map());
  if (cmd.create.length > 0)
    await ensureRooms(
      {
        hosts: cmd.hosts,
        port: cmd.ports[0] ?? 0,
        tokens: [tokenAt(tokens, cmd.tokenOffset)],
      },
      cmd.create,
      cmd.timeoutMs,
    );
  const n = cmd.rooms.length * cmd.members;
  for (let i = 0; i < n; i++) {
    const k = Math.floor(i / cmd.rooms.length);
    members.push({
      i,
      room: i % cmd.rooms.length,
      port: k % cmd.ports.length,
      sender: k < cmd.senders,
      ws: null,
      closed: false,
      epochs: new Map(),
      sent: 0,
      echoed: 0,
      firstAfterMark: null,
    });
  }
  let opened = 0;
  let failed = 0;
  const progress = setInterval(() => log(`open ${opened}/${n}`), 2000);
  try {
    await pool(n, cmd.concurrency, async (i) => {
      const m = members[i] as Member;
      const k = Math.floor(i / cmd.rooms.length);
      try {
        const ws = await connectJoined(
          cmd,
          i,
          at(cmd.ports, k, 0),
          tokenAt(tokens, cmd.tokenOffset + i),
          roomNames[m.room] ?? "",
          cmd.timeoutMs,
        );
        m.ws = ws;
        ws.onclose = () => {
          m.closed = true;
          m.ws = null;
        };
        ws.listen((text) => onFrame(m, text));
        opened++;
      } catch (e) {
        failed++;
        m.closed = true;
        note(`open ${i}: ${e instanceof Error ? e.message : String(e)}`);
      }
    });
  } finally {
    clearInterval(progress);
  }
  return { opened, failed, ms: round(performance.now() - start, 1), errors: [...errors] };
}

function send(cmd: SteadySendCmd): { senders: number } {
  if (sending !== null) throw new Error("already sending");
  const senders = members.filter((m) => m.sender);
  if (senders.length === 0) throw new Error("no senders");
  const t0 = performance.now();
  let turns = 0;
  sending = setInterval(() => {
    const t = performance.now() - t0;
    if (t > cmd.maxMs) return stopSending();
    // At most 1 s worth per tick: a stalled tick catches up without an unbounded burst.
    const due = Math.min(Math.floor((cmd.msgPerSec * t) / 1000) - turns, cmd.msgPerSec);
    for (let b = 0; b < due; b++) {
      const m = senders[turns++ % senders.length] as Member;
      if (m.ws === null) continue; // a closed sender's turn passes
      m.sent++;
      sentTotal++;
      m.ws.send(`{"type":"message","content":"s${m.i}|${m.sent}|${wall()}"}`);
    }
  }, 5);
  return { senders: senders.length };
}

function stopSending(): void {
  if (sending !== null) clearInterval(sending);
  sending = null;
}

export interface WindowCmd {
  op: "window";
  /** Wall-clock times (ms, ascending) to split the window's tail at (see `WindowTail`). */
  marks?: number[];
  /** Also add the window's deliveries to this pool (several windows judged together). */
  pool?: string;
}

/** The latency of every window added to one pool (`WindowCmd.pool`), taken once. */
export interface PoolCmd {
  op: "pool";
  name: string;
}

/**
 * Where a window's tail was sent: its deliveries at or over its p99, and their messages (a
 * message reaches every member of its room: they share one send time), counted by send time
 * between the marks — bin k holds those sent before marks[k] and at or after marks[k − 1].
 */
export interface WindowTail {
  atLeastMs: number;
  marks: number[];
  deliveries: number[];
  messages: number[];
}

/** A window's latency, and the same without the first room's members. */
export interface WindowLatency extends Latency {
  outside: Latency;
  tail?: WindowTail;
}

/** The window's deliveries (send time, latency), for its tail; at most TAIL_RECORDS. */
let sentAts: number[] = [];
let latencies: number[] = [];
const TAIL_RECORDS = 500_000;

/** Pools of windows (`WindowCmd.pool`): all their deliveries, and those outside room 0. */
const pools = new Map<string, { all: Histogram; outside: Histogram }>();

function windowSummary(marks?: number[], pool?: string): WindowLatency {
  const s: WindowLatency = { ...hist.summary(), outside: histOutside.summary() };
  if (marks !== undefined) s.tail = tailOf(s.p99Ms, marks);
  if (pool !== undefined) {
    const p = pools.get(pool) ?? { all: new Histogram(), outside: new Histogram() };
    p.all.merge(hist);
    p.outside.merge(histOutside);
    pools.set(pool, p);
  }
  hist = new Histogram();
  histOutside = new Histogram();
  sentAts = [];
  latencies = [];
  return s;
}

function tailOf(atLeastMs: number, marks: number[]): WindowTail {
  const deliveries = new Array<number>(marks.length + 1).fill(0);
  const seen = marks.map(() => new Set<number>()).concat([new Set<number>()]);
  for (let i = 0; i < latencies.length; i++) {
    if ((latencies[i] as number) < atLeastMs) continue;
    const at = sentAts[i] as number;
    const k = partOf(at, marks);
    deliveries[k] = (deliveries[k] ?? 0) + 1;
    seen[k]?.add(at);
  }
  return { atLeastMs, marks, deliveries, messages: seen.map((m) => m.size) };
}

/** Every member that stayed connected holds its room's last seq of every epoch. */
function drained(): boolean {
  return members.every(
    (m) =>
      m.closed ||
      [...(tops[m.room] as Map<string, number>)].every(
        ([epoch, top]) => (m.epochs.get(epoch)?.last ?? 0) >= top,
      ),
  );
}

async function collect(cmd: SteadyCollectCmd): Promise<SteadyCollectResult> {
  stopSending();
  const deadline = performance.now() + cmd.drainMs;
  // Echoes settle too: every sent message not refused comes back to its sender.
  const refusedNow = () => Object.values(refused).reduce((a, b) => a + b, 0);
  const echoedAll = () => members.reduce((a, m) => a + m.echoed, 0) + refusedNow() >= sentTotal;
  while (performance.now() < deadline && !(drained() && echoedAll())) await Bun.sleep(20);
  let lost = 0;
  let membersWithLoss = 0;
  const losses: SteadyCollectResult["losses"] = [];
  let duplicates = 0;
  let maxEpochs = 0;
  let echoed = 0;
  let unanswered = 0;
  for (const m of members) {
    echoed += m.echoed;
    const top = tops[m.room] as Map<string, number>;
    maxEpochs = Math.max(maxEpochs, top.size);
    if (m.closed) continue;
    let missed = 0;
    let k = 0;
    for (const [epoch, last] of top) {
      const miss = last - (m.epochs.get(epoch)?.distinct ?? 0);
      missed += miss;
      if (miss > 0 && losses.length < 20)
        losses.push({ member: m.i, room: m.room, port: m.port, epoch: k, missed: miss, top: last });
      k++;
    }
    for (const e of m.epochs.values()) duplicates += e.duplicates;
    lost += missed;
    if (missed > 0) membersWithLoss++;
  }
  for (const m of members) if (m.sender && !m.closed) unanswered += m.sent - m.echoed;
  unanswered = Math.max(0, unanswered - refusedNow());
  return {
    sockets: members.length,
    closed: members.filter((m) => m.closed).length,
    sent: sentTotal,
    refused: { ...refused },
    echoed,
    unanswered,
    deliveries,
    lost,
    membersWithLoss,
    losses,
    duplicates,
    maxEpochs,
    errorFrames,
    errors: [...errors],
  };
}

function recovery(): SteadyRecoveryResult {
  const live = members.filter((m) => !m.closed);
  const times = live
    .filter((m) => m.firstAfterMark !== null)
    .map((m) => (m.firstAfterMark as number) - markAt)
    .sort((a, b) => a - b);
  return {
    live: live.length,
    reached: times.length,
    p50Ms: times.length ? round(times[Math.floor(times.length / 2)] as number, 1) : null,
    maxMs: times.length ? round(times[times.length - 1] as number, 1) : null,
  };
}

// ---------------------------------------------------------------- churn, burst, slow readers

let churnRun: Promise<ChurnStopResult> | null = null;
let churnStop = false;

async function churnLoop(cmd: ChurnStartCmd): Promise<ChurnStopResult> {
  const tokens = readTokens(cmd.file);
  const start = performance.now();
  const deadline = start + cmd.maxMs;
  let started = 0;
  let ops = 0;
  let failed = 0;
  let limited = 0;
  const errs = new Set<string>();
  const one = async (n: number) => {
    try {
      const ws = await connectJoined(
        cmd,
        n,
        at(cmd.ports, n, 0),
        tokenAt(tokens, cmd.tokenOffset + (n % cmd.users)),
        cmd.join ? at(cmd.rooms, n, "") : null,
        cmd.timeoutMs,
      );
      await new Promise<void>((resolve) => {
        ws.onclose = () => resolve();
        ws.close();
      });
      ops++;
    } catch (e) {
      failed++;
      const message = e instanceof Error ? e.message : String(e);
      if (message.includes("HTTP/1.1 429")) limited++;
      else if (errs.size < 5) errs.add(message);
    }
  };
  const more = () => !churnStop && performance.now() < deadline && started < cmd.maxOps;
  if (cmd.ratePerSec > 0) {
    // Paced: the operations due by now start, at most `concurrency` in flight.
    let inFlight = 0;
    while (more()) {
      const due = Math.floor(((performance.now() - start) * cmd.ratePerSec) / 1000);
      while (started < due && inFlight < cmd.concurrency && more()) {
        inFlight++;
        one(started++).finally(() => inFlight--);
      }
      await Bun.sleep(5);
    }
    const end = performance.now() + cmd.timeoutMs;
    while (inFlight > 0 && performance.now() < end) await Bun.sleep(5);
  } else {
    const worker = async () => {
      while (more()) await one(started++);
    };
    await Promise.all(Array.from({ length: cmd.concurrency }, worker));
  }
  const ms = performance.now() - start;
  return {
    ops,
    failed,
    limited,
    ms: round(ms, 1),
    opsPerSec: Math.round((ops * 1000) / ms),
    errors: [...errs],
  };
}

async function burst(cmd: BurstCmd): Promise<BurstResult> {
  const tokens = readTokens(cmd.file);
  const start = performance.now();
  const startAt = wall();
  const sockets: StormSocket[] = [];
  let failed = 0;
  let received = 0;
  const errs = new Set<string>();
  await pool(cmd.count, cmd.concurrency, async (n) => {
    try {
      const ws = await connectJoined(
        cmd,
        n,
        at(cmd.ports, n, 0),
        tokenAt(tokens, cmd.tokenOffset + n),
        cmd.room,
        cmd.timeoutMs,
      );
      ws.listen(() => received++);
      sockets.push(ws);
    } catch (e) {
      failed++;
      if (errs.size < 5) errs.add(e instanceof Error ? e.message : String(e));
    }
  });
  const openMs = round(performance.now() - start, 1);
  const openedAt = wall();
  await Bun.sleep(cmd.holdMs);
  const leaveAt = wall();
  for (const ws of sockets) ws.close();
  return {
    opened: sockets.length,
    failed,
    openMs,
    received,
    errors: [...errs],
    at: { start: startAt, opened: openedAt, leave: leaveAt },
  };
}

const slowOnes: StormSocket[] = [];
let pump: { ws: StormSocket; timer: ReturnType<typeof setInterval>; sent: number } | null = null;

/** The pump alone (before the slow readers come: the busy room they are compared with). */
async function startPump(cmd: SlowCmd): Promise<void> {
  if (pump !== null) return;
  const tokens = readTokens(cmd.file);
  const ws = await connectJoined(
    cmd,
    cmd.count,
    at(cmd.ports, 0, 0),
    tokenAt(tokens, cmd.tokenOffset + cmd.count),
    cmd.room,
    cmd.timeoutMs,
  );
  ws.listen(() => {});
  const pad = "x".repeat(cmd.pump.bytes);
  const t0 = performance.now();
  let sent = 0;
  const timer = setInterval(() => {
    const t = performance.now() - t0;
    if (t > cmd.pump.maxMs) return clearInterval(timer);
    const due = Math.min(Math.floor((t * cmd.pump.perSec) / 1000) - sent, cmd.pump.perSec);
    for (let k = 0; k < due; k++) ws.send(`{"type":"message","content":"p|${sent++}|${pad}"}`);
    if (pump !== null) pump.sent = sent;
  }, 5);
  pump = { ws, timer, sent };
}

async function slow(cmd: SlowCmd): Promise<{ opened: number }> {
  await startPump(cmd);
  const tokens = readTokens(cmd.file);
  for (let n = 0; n < cmd.count; n++) {
    const ws = await connectJoined(
      cmd,
      n,
      at(cmd.ports, n, 0),
      tokenAt(tokens, cmd.tokenOffset + n),
      cmd.room,
      cmd.timeoutMs,
    );
    ws.pauseReading();
    slowOnes.push(ws);
  }
  return { opened: slowOnes.length };
}

function slowStatus(): SlowStatus {
  const opened = slowOnes.length;
  const closedByServer = slowOnes.filter((s) => s.closed).length;
  const pumped = pump?.sent ?? 0;
  if (pump !== null) {
    clearInterval(pump.timer);
    pump.ws.close();
    pump = null;
  }
  for (const s of slowOnes.splice(0)) s.close();
  return { opened, closedByServer, pumped };
}

type Cmd = { id: number } & (
  | SteadyOpenCmd
  | SteadySendCmd
  | SteadyCollectCmd
  | ChurnStartCmd
  | BurstCmd
  | SlowCmd
  | (Omit<SlowCmd, "op"> & { op: "pump" })
  | WindowCmd
  | PoolCmd
  | { op: "recovery" | "churnStop" | "slowStatus" | "exit" }
  | { op: "mark"; at: number }
);

async function run(cmd: Cmd): Promise<unknown> {
  switch (cmd.op) {
    case "open":
      return open(cmd);
    case "send":
      return send(cmd);
    case "collect":
      return collect(cmd);
    case "window":
      return windowSummary(cmd.marks, cmd.pool);
    case "pool": {
      const p = pools.get(cmd.name);
      if (p === undefined) throw new Error(`no pool ${cmd.name}`);
      pools.delete(cmd.name);
      return { ...p.all.summary(), outside: p.outside.summary() } satisfies WindowLatency;
    }
    case "mark":
      markAt = cmd.at;
      for (const m of members) m.firstAfterMark = null;
      return {};
    case "recovery":
      return recovery();
    case "churn":
      if (churnRun !== null) throw new Error("already churning");
      churnStop = false;
      churnRun = churnLoop(cmd);
      return {};
    case "churnStop": {
      if (churnRun === null) throw new Error("not churning");
      churnStop = true;
      const r = await churnRun;
      churnRun = null;
      return r;
    }
    case "burst":
      return burst(cmd);
    case "pump":
      await startPump({ ...cmd, op: "slow" });
      return {};
    case "slow":
      return slow(cmd);
    case "slowStatus":
      return slowStatus();
    case "exit":
      return {};
  }
}

function closeEverything(): void {
  stopSending();
  churnStop = true;
  for (const m of members) {
    const ws = m.ws;
    if (ws) {
      ws.onclose = null;
      ws.close();
    }
  }
  slowStatus();
}

if (import.meta.main) serveLines<Cmd>(run, closeEverything);
