// Client side of fan-out: senders in each room send messages whose content carries the sender's
// socket index and a send timestamp; every member counts what it gets, so loss and latency come
// from the same frames. Closed loop (a window in flight per sender) or a fixed delivery rate.
import type { FanoutCmd, FanoutResult, PulseResult } from "./commands.ts";
import { cpuSeconds, machineCpu } from "./proc.ts";
import type { RawSocket } from "./raw-ws.ts";
import { Histogram, round } from "./stats.ts";

/** Sockets opened together: socket j sits in rooms[roomOf[j]]. */
export interface Group {
  sockets: RawSocket[];
  roomOf: number[];
  rooms: string[];
  unexpectedCloses: number;
}

const ERROR_TYPE = Buffer.from('"type":"error"');
const RATE_LIMITED = Buffer.from('"code":"rate_limited"');
const BOT_TYPE = Buffer.from('"type":"bot"');
const BAR = 0x7c; // |
const DOT = 0x2e; // .
const ZERO = 0x30;
let runs = 0;

/** Where the last `decimalAt` stopped (a module variable: no result object per frame). */
let decimalEnd = 0;

/** The unsigned decimal (digits, optionally one dot) at `at`; `decimalEnd` is the index after it. */
function decimalAt(b: Buffer, at: number): number {
  let value = 0;
  let scale = 0;
  let i = at;
  for (; i < b.length; i++) {
    const c = b[i] as number;
    if (c === DOT && scale === 0) scale = 1;
    else if (c >= ZERO && c <= ZERO + 9) {
      if (scale === 0) value = value * 10 + (c - ZERO);
      else value += (c - ZERO) / 10 ** scale++;
    } else break;
  }
  decimalEnd = i;
  return value;
}

/** Counts deliveries per socket for one run, identified by a marker at the start of `content`. */
class Tracker {
  readonly marker = `b${process.pid}r${++runs}|`;
  /** `"content":"<marker>` as bytes: found in a frame's raw payload with no decoding. */
  private readonly needle = Buffer.from(`"content":"${this.marker}`);
  readonly got: Uint32Array;
  readonly members: number[];
  readonly sentPerRoom: number[];
  readonly hist = new Histogram();
  windowStart = Number.POSITIVE_INFINITY;
  windowEnd = Number.POSITIVE_INFINITY;
  windowDeliveries = 0;
  received = 0;
  expected = 0;
  errorFrames = 0;
  rateLimited = 0;
  botFrames = 0;
  onEcho: ((sender: number) => void) | null = null;

  constructor(
    readonly group: Group,
    private readonly suffix = "",
  ) {
    this.got = new Uint32Array(group.sockets.length);
    this.members = group.rooms.map(() => 0);
    this.sentPerRoom = group.rooms.map(() => 0);
    for (const r of group.roomOf) this.members[r] = (this.members[r] ?? 0) + 1;
    group.sockets.forEach((ws, j) => {
      ws.onmessage = (buf, start, end) => this.frame(j, buf, start, end);
    });
  }

  /** One received frame, `buf[start, end)` (raw JSON bytes): counted, timed if it is this run's. */
  private frame(j: number, buf: Buffer, start: number, end: number): void {
    const k = buf.indexOf(this.needle, start);
    if (k < 0 || k + this.needle.length > end) {
      const e = buf.indexOf(ERROR_TYPE, start);
      if (e >= 0 && e + ERROR_TYPE.length <= end) {
        this.errorFrames++;
        const r = buf.indexOf(RATE_LIMITED, start);
        if (r >= 0 && r + RATE_LIMITED.length <= end) this.rateLimited++;
        return;
      }
      const b = buf.indexOf(BOT_TYPE, start);
      if (b >= 0 && b + BOT_TYPE.length <= end) this.botFrames++;
      return;
    }
    const now = performance.now();
    const sender = decimalAt(buf, k + this.needle.length);
    if (buf[decimalEnd] !== BAR) return;
    const sentAt = decimalAt(buf, decimalEnd + 1);
    this.got[j] = (this.got[j] ?? 0) + 1;
    this.received++;
    if (now >= this.windowStart && now < this.windowEnd) {
      this.hist.add(now - sentAt);
      this.windowDeliveries++;
    }
    if (sender === j && this.onEcho !== null) this.onEcho(j);
  }

  send(j: number): void {
    const room = this.group.roomOf[j] ?? 0;
    this.sentPerRoom[room] = (this.sentPerRoom[room] ?? 0) + 1;
    this.expected += this.members[room] ?? 0;
    const content = `${this.marker}${j}|${performance.now().toFixed(3)}${this.suffix}`;
    this.group.sockets[j]?.send(`{"type":"message","content":"${content}"}`);
  }

  /** Waits until every expected delivery arrived, or `ms` passed. */
  async drained(ms: number): Promise<void> {
    const deadline = performance.now() + ms;
    while (this.received < this.expected && performance.now() < deadline) await Bun.sleep(5);
  }

  loss(): { lost: number; duplicates: number } {
    let lost = 0;
    let duplicates = 0;
    this.group.roomOf.forEach((r, j) => {
      const diff = (this.sentPerRoom[r] ?? 0) - (this.got[j] ?? 0);
      if (diff > 0) lost += diff;
      else duplicates -= diff;
    });
    return { lost, duplicates };
  }

  detach(): void {
    for (const ws of this.group.sockets) ws.onmessage = null;
  }
}

/** The first `n` members of each room, in socket order. */
function pickSenders(group: Group, n: number): number[] {
  const taken = group.rooms.map(() => 0);
  const out: number[] = [];
  group.roomOf.forEach((r, j) => {
    if ((taken[r] ?? 0) < n) {
      taken[r] = (taken[r] ?? 0) + 1;
      out.push(j);
    }
  });
  return out;
}

export async function fanout(cmd: FanoutCmd, group: Group): Promise<FanoutResult> {
  const tr = new Tracker(group, cmd.suffix);
  const senders = pickSenders(group, cmd.senders);
  const closesBefore = group.unexpectedCloses;
  let sent = 0;
  let sending = true;
  // Server CPU: serverPid plus extraPids (the other nodes and redis-server of a cluster run).
  const pids = [cmd.serverPid, ...(cmd.extraPids ?? [])];
  const serverCpu = () => pids.map((pid) => cpuSeconds(pid));
  let cpus0: number[] = [];
  let cpus1: number[] = [];
  let cpu0 = 0;
  let cpu1 = 0;
  let own0 = 0;
  let own1 = 0;
  let all0 = { tasks: 0, steal: 0 };
  let all1 = { tasks: 0, steal: 0 };
  let windowEndedEarly = false;
  const trySend = (j: number): boolean => {
    if (!sending) return false;
    if (sent >= cmd.maxMessages) {
      endWindow();
      return false;
    }
    tr.send(j);
    sent++;
    return true;
  };
  const startWindow = () => {
    cpus0 = serverCpu();
    cpu0 = cpus0.reduce((a, x) => a + x, 0);
    own0 = cpuSeconds(process.pid);
    all0 = machineCpu();
    tr.windowStart = performance.now();
  };
  function endWindow() {
    if (!sending) return;
    sending = false;
    if (tr.windowStart === Number.POSITIVE_INFINITY) startWindow();
    cpus1 = serverCpu();
    cpu1 = cpus1.reduce((a, x) => a + x, 0);
    own1 = cpuSeconds(process.pid);
    all1 = machineCpu();
    windowEndedEarly = performance.now() < tr.windowEnd;
    tr.windowEnd = performance.now();
  }

  const start = performance.now();
  let ticker: ReturnType<typeof setInterval> | null = null;
  if (cmd.mode === "closed") {
    tr.onEcho = (j) => {
      trySend(j);
    };
    for (let w = 0; w < cmd.window; w++) for (const j of senders) trySend(j);
  } else {
    const members = group.sockets.length / Math.max(1, group.rooms.length);
    const perSec = cmd.deliveriesPerSec / members;
    let rr = 0;
    ticker = setInterval(() => {
      const due = Math.floor((perSec * (performance.now() - start)) / 1000) - sent;
      for (let k = 0; k < Math.min(due, 5000); k++) {
        if (!trySend(senders[rr++ % senders.length] ?? 0)) break;
      }
    }, 1);
  }
  await Bun.sleep(cmd.warmupMs);
  if (sending) {
    startWindow();
    tr.windowEnd = tr.windowStart + cmd.durationMs;
  }
  while (sending && performance.now() < tr.windowEnd) await Bun.sleep(5);
  endWindow();
  if (ticker) clearInterval(ticker);
  await tr.drained(cmd.drainMs);
  tr.detach();
  const { lost, duplicates } = tr.loss();
  const windowMs = Math.max(1e-3, tr.windowEnd - tr.windowStart);
  if (windowEndedEarly) process.stderr.write(`[client ${process.pid}] max messages reached\n`);
  return {
    sent,
    expected: tr.expected,
    received: tr.received,
    lost,
    duplicates,
    windowDeliveries: tr.windowDeliveries,
    windowMs: round(windowMs, 1),
    deliveriesPerSec: Math.round((tr.windowDeliveries * 1000) / windowMs),
    serverCpuSec: round(cpu1 - cpu0, 2),
    ...(cmd.extraPids ? { pidCpuSec: cpus1.map((c, k) => round(c - (cpus0[k] ?? 0), 2)) } : {}),
    clientCpuSec: round(own1 - own0, 2),
    otherCpuSec: round(Math.max(0, all1.tasks - all0.tasks - (cpu1 - cpu0) - (own1 - own0)), 2),
    stealSec: round(all1.steal - all0.steal, 2),
    latency: tr.hist.summary(),
    unexpectedCloses: group.unexpectedCloses - closesBefore,
    errorFrames: tr.errorFrames,
    rateLimited: tr.rateLimited,
    botFrames: tr.botFrames,
  };
}

/** One message per room from its first member; every socket must get exactly one. */
export async function pulse(group: Group, timeoutMs: number): Promise<PulseResult> {
  const tr = new Tracker(group);
  const t = performance.now();
  for (const j of pickSenders(group, 1)) tr.send(j);
  await tr.drained(timeoutMs);
  tr.detach();
  return {
    expected: tr.expected,
    received: tr.received,
    lost: tr.loss().lost,
    ms: round(performance.now() - t, 1),
  };
}
