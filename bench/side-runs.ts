// The measuring loop shared by bench/cluster.ts and bench/history.ts: users made through the REST
// API of a throwaway admin node, then repeats × sides in rotation, each on freshly started servers
// and a fresh load client (an Agent): open the group, read each node's socket count, run every
// fan-out mode (closed loop, then each rate; a window disturbed by other processes is run again at
// most `retries` times), close, stop. A side-repeat that throws is recorded through `fail` and left
// out. The repeats of each mode are combined (bench/paired.ts) per side.
import { Agent } from "./agent.ts";
import { tracked } from "./cleanup.ts";
import type { ClusterProfile } from "./cluster-profiles.ts";
import type { FanoutCmd, FanoutResult, Target } from "./commands.ts";
import { combine, type FanoutMeta, type FanoutRun, rotation } from "./paired.ts";
import { names } from "./scenarios.ts";
import { makeUsers, type ServerOpts, startKabar } from "./servers.ts";
import { QUIET_CORES } from "./setup.ts";
import { round } from "./stats.ts";

/** One side's started servers: the pids whose CPU is server CPU (first one the main node's). */
export interface Running {
  pids: number[];
  ports: number[];
  stop(): Promise<void>;
}

/** The fields of a cluster or history profile the loop reads. */
export type SideRunsProfile = Omit<ClusterProfile, "name" | "quietWaitMs">;

export interface Disturbed {
  phase: string;
  otherCores: number;
  retried: boolean;
}

export interface SideRunsOptions<K extends string> {
  /** "cluster" or "history": names the agents, phases and user emails. */
  name: string;
  /** The agent's socket group and the rooms' name prefix. */
  group: string;
  sides: readonly K[];
  start(side: K): Promise<Running>;
  profile: SideRunsProfile;
  /** The admin node's environment and start options (it makes the users, then stops). */
  adminEnv: Record<string, string>;
  adminOpts: ServerOpts & { logFile: string };
  admin: { email: string; password: string };
  /** Every user's password. */
  password: string;
  agentCore: number;
  progress: boolean;
  log(msg: string): void;
  fail(phase: string, e: unknown): void;
  quiet(phase: string): Promise<void>;
  disturbed: Disturbed[];
  /** Called once the users are made. */
  onUsers?(tokens: string[]): void;
}

export interface SideRuns {
  runs: FanoutRun[];
  /** Sockets each node held after the group opened (/api/v1/ws/health), per repeat. */
  socketsPerNode: number[][];
}

export async function activeConnections(port: number): Promise<number> {
  try {
    const res = await fetch(`http://127.0.0.1:${port}/api/v1/ws/health`);
    const body = (await res.json()) as { active_connections?: number };
    return typeof body.active_connections === "number" ? body.active_connections : -1;
  } catch {
    return -1;
  }
}

/** Runs every side's repeats; returns the sides with at least one combined run. */
export async function runSides<K extends string>(o: SideRunsOptions<K>): Promise<Map<K, SideRuns>> {
  const p = o.profile;
  const { log, fail, quiet, disturbed } = o;
  const reps = new Map<string, FanoutResult[]>();
  const perNode = new Map<K, number[][]>();
  const modes = [
    { label: "max (closed loop)", mode: "closed" as const, rate: null, ms: p.closedMs },
    ...p.rates.map((r) => ({
      label: r.label,
      mode: "rate" as const,
      rate: r.deliveriesPerSec,
      ms: p.rateMs,
    })),
  ];
  const key = (side: K, label: string) => `${side}\n${label}`;
  const hosts = Array.from({ length: p.hosts }, (_, k) => `127.0.0.${k + 1}`);
  const rooms = names(o.group, p.rooms);
  try {
    const adminNode = await startKabar(o.adminEnv, o.adminOpts);
    const stopAdmin = tracked(() => adminNode.stop());
    let tokens: string[];
    try {
      const emails = Array.from({ length: p.users }, (_, k) => `${o.name}${k}@example.com`);
      tokens = await makeUsers(adminNode.port, o.admin, emails, o.password);
    } finally {
      await stopAdmin();
    }
    o.onUsers?.(tokens);
    for (let rep = 0; rep < p.repeats; rep++) {
      for (const side of rotation(o.sides, rep)) {
        try {
          const running = await o.start(side);
          try {
            const agent = Agent.start(`${o.name}-${side}`, {
              core: o.agentCore,
              progress: o.progress,
            });
            const stopAgent = tracked(() => agent.stop());
            try {
              log(
                `  ${side}, repeat ${rep + 1}/${p.repeats} (server pids ${running.pids.join(", ")})`,
              );
              const target: Target = {
                hosts,
                port: running.ports[0] ?? 0,
                tokens,
                ...(running.ports.length > 1 ? { ports: running.ports, portStride: p.rooms } : {}),
              };
              const open = await agent.call(
                {
                  op: "open",
                  group: o.group,
                  target,
                  count: p.rooms * p.members,
                  concurrency: 64,
                  rooms,
                  create: true,
                  timeoutMs: 10_000,
                },
                120_000,
              );
              if (open.failed > 0)
                throw new Error(`${open.failed} sockets failed: ${open.errors[0] ?? "?"}`);
              const counts = await Promise.all(
                running.ports.map((port) => activeConnections(port)),
              );
              perNode.set(side, [...(perNode.get(side) ?? []), counts]);
              for (const m of modes) {
                const phase = `${o.name} fan-out ${m.label} ${side} #${rep + 1}`;
                const cmd: FanoutCmd = {
                  op: "fanout",
                  group: o.group,
                  senders: p.senders,
                  mode: m.mode,
                  window: p.window,
                  deliveriesPerSec: m.rate ?? 0,
                  warmupMs: p.warmupMs,
                  durationMs: m.ms,
                  drainMs: 10_000,
                  maxMessages: p.maxMessages,
                  serverPid: running.pids[0] ?? 0,
                  extraPids: running.pids.slice(1),
                  suffix: "",
                };
                let result: FanoutResult | null = null;
                for (let attempt = 0; attempt <= p.retries; attempt++) {
                  await quiet(phase);
                  result = await agent.call(cmd, m.ms + 60_000);
                  const other = round((result.otherCpuSec * 1000) / result.windowMs, 2);
                  if (other < QUIET_CORES) break;
                  const retried = attempt < p.retries;
                  disturbed.push({ phase, otherCores: other, retried });
                  log(
                    `  other processes used ${other} cores in ${phase}${retried ? ": again" : ""}`,
                  );
                }
                if (result === null) throw new Error(`${phase}: no result`);
                const k = key(side, m.label);
                reps.set(k, [...(reps.get(k) ?? []), result]);
              }
              await agent.call({ op: "close", group: o.group, timeoutMs: 5000 }, 10_000);
            } finally {
              await stopAgent();
            }
          } finally {
            await running.stop();
          }
        } catch (e) {
          fail(`${o.name} fan-out ${side} #${rep + 1}`, e);
        }
      }
    }
  } catch (e) {
    fail("setup", e);
  }
  const out = new Map<K, SideRuns>();
  for (const side of o.sides) {
    const runs: FanoutRun[] = [];
    for (const m of modes) {
      const got = reps.get(key(side, m.label)) ?? [];
      if (got.length === 0) continue;
      const meta: FanoutMeta = {
        label: m.label,
        mode: m.mode,
        rate: m.rate,
        load: "shared users",
        senders: p.senders,
        users: p.users,
        suffix: "",
        perSenderMsgPerSec:
          m.rate === null ? null : round(m.rate / p.members / p.rooms / p.senders, 3),
      };
      runs.push(combine(meta, got));
    }
    if (runs.length > 0) out.set(side, { runs, socketsPerNode: perNode.get(side) ?? [] });
  }
  return out;
}
