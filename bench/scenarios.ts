// The four scenarios, run from the harness against one server: clients in their own processes,
// server memory and CPU read from /proc around each measured phase.
import { Agent } from "./agent.ts";
import type { ChurnResult, PulseResult, Target } from "./commands.ts";
import { cpuSeconds, machineCpu, rssBytes } from "./proc.ts";
import type { Profile } from "./profiles.ts";
import type { ServerProc } from "./servers.ts";
import { round } from "./stats.ts";

export interface Setup {
  profile: Profile;
  hosts: string[];
  tokens: string[];
  flooderToken: string;
  clientCore: number;
  progress: boolean;
  log: (msg: string) => void;
  /** Waits (bounded) until no other process is busy on the machine; called before each measurement. */
  quiet: (phase: string) => Promise<void>;
}

export interface ConnectionsResult {
  n: number;
  opened: number;
  failed: number;
  openSec: number;
  connPerSec: number;
  rssBeforeMiB: number;
  rssAfterMiB: number;
  rssAfterCloseMiB: number;
  rssPerConnKiB: number;
  cpuSec: number;
  cpuPerConnUs: number;
  /** CPU of every process but the server and the clients while the sockets opened. */
  otherCpuSec: number;
  pulse: PulseResult;
  errors: string[];
}

export interface ChurnScenario extends ChurnResult {
  cpuPerOpUs: number;
  otherCpuSec: number;
  rssBeforeMiB: number;
  rssAfterMiB: number;
}

export const MiB = (b: number) => round(b / 2 ** 20, 1);
export const names = (prefix: string, n: number) =>
  Array.from({ length: n }, (_, k) => `${prefix}_${k}`);
export const target = (s: Setup, srv: ServerProc, tokens = s.tokens): Target => ({
  hosts: s.hosts,
  port: srv.port,
  tokens,
});

/** Machine-wide busy CPU, and the part of it that the server and these clients used. */
function cpuSnapshot(srv: ServerProc, agents: Agent[]): { all: number; ours: number } {
  let ours = cpuSeconds(srv.pid);
  for (const a of agents) ours += cpuSeconds(a.pid);
  return { all: machineCpu().tasks, ours };
}
const otherCpu = (a: { all: number; ours: number }, b: { all: number; ours: number }) =>
  round(Math.max(0, b.all - a.all - (b.ours - a.ours)), 2);

export async function withAgents<T>(
  s: Setup,
  n: number,
  fn: (agents: Agent[]) => Promise<T>,
): Promise<T> {
  const agents = Array.from({ length: n }, (_, k) =>
    Agent.start(`c${k}`, { core: s.clientCore, progress: s.progress }),
  );
  try {
    return await fn(agents);
  } finally {
    await Promise.all(agents.map((a) => a.stop()));
  }
}

/** N authenticated sockets, each joined to a room: open time, memory and CPU per socket, pulse. */
export function connections(s: Setup, srv: ServerProc): Promise<ConnectionsResult> {
  const c = s.profile.connections;
  return withAgents(s, c.clients, async (agents) => {
    const first = agents[0] as Agent;
    const t = target(s, srv);
    const warmRooms = names("warm", Math.max(1, Math.ceil(c.warmup / c.roomSize)));
    await first.call({ op: "rooms", target: t, rooms: warmRooms, timeoutMs: 10_000 }, 20_000);
    await first.call(
      {
        op: "open",
        group: "warm",
        target: t,
        count: c.warmup,
        concurrency: c.concurrency,
        rooms: warmRooms,
        create: false,
        timeoutMs: 10_000,
      },
      60_000,
    );
    await first.call({ op: "pulse", group: "warm", timeoutMs: 5000 }, 10_000);
    await first.call({ op: "close", group: "warm", timeoutMs: 5000 }, 10_000);
    const shares = agents.map(
      (_, k) => Math.floor(c.n / c.clients) + (k < c.n % c.clients ? 1 : 0),
    );
    const rooms = shares.map((share, k) =>
      names(`c${k}`, Math.max(1, Math.ceil(share / c.roomSize))),
    );
    await Promise.all(
      agents.map((a, k) =>
        a.call({ op: "rooms", target: t, rooms: rooms[k] ?? [], timeoutMs: 10_000 }, 20_000),
      ),
    );
    await Bun.sleep(s.profile.settleMs);
    await s.quiet(`connections ${srv.name}`);
    const rss0 = rssBytes(srv.pid);
    const cpu0 = cpuSeconds(srv.pid);
    const snap0 = cpuSnapshot(srv, agents);
    const t0 = performance.now();
    const opens = await Promise.all(
      agents.map((a, k) =>
        a.call(
          {
            op: "open",
            group: "c",
            target: t,
            count: shares[k] ?? 0,
            concurrency: c.concurrency,
            rooms: rooms[k] ?? [],
            create: false,
            timeoutMs: 20_000,
          },
          120_000 + (shares[k] ?? 0) * 5,
        ),
      ),
    );
    const openMs = performance.now() - t0;
    const cpu1 = cpuSeconds(srv.pid);
    const snap1 = cpuSnapshot(srv, agents);
    await Bun.sleep(s.profile.settleMs);
    const rss1 = rssBytes(srv.pid);
    const pulses = await Promise.all(
      agents.map((a) => a.call({ op: "pulse", group: "c", timeoutMs: 10_000 }, 20_000)),
    );
    await Promise.all(
      agents.map((a) => a.call({ op: "close", group: "c", timeoutMs: 10_000 }, 20_000)),
    );
    await Bun.sleep(s.profile.settleMs);
    const rss2 = rssBytes(srv.pid);
    const opened = opens.reduce((a, o) => a + o.opened, 0);
    const sum = (f: (p: PulseResult) => number) => pulses.reduce((a, p) => a + f(p), 0);
    return {
      n: c.n,
      opened,
      failed: opens.reduce((a, o) => a + o.failed, 0),
      openSec: round(openMs / 1000, 3),
      connPerSec: Math.round((opened * 1000) / openMs),
      rssBeforeMiB: MiB(rss0),
      rssAfterMiB: MiB(rss1),
      rssAfterCloseMiB: MiB(rss2),
      rssPerConnKiB: round((rss1 - rss0) / 1024 / Math.max(1, opened), 2),
      cpuSec: round(cpu1 - cpu0, 2),
      cpuPerConnUs: round(((cpu1 - cpu0) * 1e6) / Math.max(1, opened), 1),
      otherCpuSec: otherCpu(snap0, snap1),
      pulse: {
        expected: sum((p) => p.expected),
        received: sum((p) => p.received),
        lost: sum((p) => p.lost),
        ms: Math.max(...pulses.map((p) => p.ms)),
      },
      errors: opens.flatMap((o) => o.errors),
    };
  });
}

/** connect → auth → join → leave → disconnect in a loop; memory before and after. */
export function churnScenario(s: Setup, srv: ServerProc): Promise<ChurnScenario> {
  const c = s.profile.churn;
  return withAgents(s, 1, async ([agent]) => {
    const a = agent as Agent;
    const t = target(s, srv);
    await a.call({ op: "rooms", target: t, rooms: ["churn"], timeoutMs: 10_000 }, 20_000);
    await Bun.sleep(s.profile.settleMs);
    await s.quiet(`churn ${srv.name}`);
    const rss0 = rssBytes(srv.pid);
    const cpu0 = cpuSeconds(srv.pid);
    const snap0 = cpuSnapshot(srv, [a]);
    const r = await a.call(
      {
        op: "churn",
        target: t,
        room: "churn",
        create: false,
        concurrency: c.concurrency,
        durationMs: c.ms,
        maxOps: c.maxOps,
        opTimeoutMs: 10_000,
      },
      c.ms + 60_000,
    );
    const cpu1 = cpuSeconds(srv.pid);
    const snap1 = cpuSnapshot(srv, [a]);
    await Bun.sleep(s.profile.settleMs);
    const rss1 = rssBytes(srv.pid);
    return {
      ...r,
      otherCpuSec: otherCpu(snap0, snap1),
      cpuPerOpUs: round(((cpu1 - cpu0) * 1e6) / Math.max(1, r.ops), 1),
      rssBeforeMiB: MiB(rss0),
      rssAfterMiB: MiB(rss1),
    };
  });
}
