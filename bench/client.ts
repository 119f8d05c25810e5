// Load client: a separate Bun process (never the server's) driven by the harness over stdin/stdout.
// Each stdin line is one command (bench/commands.ts); each stdout line is its JSON reply.
// Progress goes to stderr. Holds at most ~19k sockets (the open-files limit is 20,000 per process).
import { churn } from "./churn.ts";
import type { OpenCmd, OpenResult, Request, Results } from "./commands.ts";
import { fanout, type Group, pulse } from "./fanout.ts";
import { flood } from "./flood.ts";
import { serveLines } from "./line-serve.ts";
import type { RawSocket } from "./raw-ws.ts";
import { closeAllRaw, ensureRooms, openJoinedRaw, pool } from "./sockets.ts";
import { round } from "./stats.ts";

export const MAX_SOCKETS_PER_PROCESS = 19_000;

const groups = new Map<string, Group>();
const log = (msg: string) => process.stderr.write(`[client ${process.pid}] ${msg}\n`);

function sizeOfAll(): number {
  let n = 0;
  for (const g of groups.values()) n += g.sockets.length;
  return n;
}

async function open(cmd: OpenCmd): Promise<OpenResult> {
  if (groups.has(cmd.group)) throw new Error(`group ${cmd.group} exists`);
  if (sizeOfAll() + cmd.count > MAX_SOCKETS_PER_PROCESS)
    throw new Error(`more than ${MAX_SOCKETS_PER_PROCESS} sockets in one process`);
  if (cmd.create) await ensureRooms(cmd.target, cmd.rooms, cmd.timeoutMs);
  const group: Group = { sockets: [], roomOf: [], rooms: cmd.rooms, unexpectedCloses: 0 };
  groups.set(cmd.group, group);
  const errors = new Set<string>();
  let failed = 0;
  const start = performance.now();
  // Sockets are kept in index order (not in the order they opened), so a room's first members
  // (its senders) are always the same sockets: with Target.ports, on known nodes.
  const opened: (RawSocket | undefined)[] = new Array(cmd.count);
  let count = 0;
  const progress = setInterval(() => log(`open ${count}/${cmd.count}`), 1000);
  try {
    await pool(cmd.count, cmd.concurrency, async (i) => {
      const room = i % cmd.rooms.length;
      try {
        const ws = await openJoinedRaw(cmd.target, i, cmd.rooms[room] ?? "", cmd.timeoutMs);
        ws.onclose = () => group.unexpectedCloses++;
        opened[i] = ws;
        count++;
      } catch (e) {
        failed++;
        if (errors.size < 5) errors.add(e instanceof Error ? e.message : String(e));
      }
    });
  } finally {
    clearInterval(progress);
    opened.forEach((ws, i) => {
      if (ws === undefined) return;
      group.sockets.push(ws);
      group.roomOf.push(i % cmd.rooms.length);
    });
  }
  return {
    opened: group.sockets.length,
    failed,
    ms: round(performance.now() - start, 1),
    errors: [...errors],
  };
}

function group(name: string): Group {
  const g = groups.get(name);
  if (!g) throw new Error(`no group ${name}`);
  return g;
}

async function run(req: Request): Promise<Results[keyof Results]> {
  switch (req.op) {
    case "open":
      return open(req);
    case "fanout":
      return fanout(req, group(req.group));
    case "pulse":
      return pulse(group(req.group), req.timeoutMs);
    case "close": {
      const g = group(req.group);
      const t = performance.now();
      const closed = closeAllRaw(g.sockets);
      await Bun.sleep(Math.min(req.timeoutMs, 200)); // let the server see the closes
      groups.delete(req.group);
      return { closed, ms: round(performance.now() - t, 1) };
    }
    case "churn":
      return churn(req);
    case "flood":
      return flood(req);
    case "rooms":
      await ensureRooms(req.target, req.rooms, req.timeoutMs);
      return { created: req.rooms.length };
    case "exit":
      return {};
  }
}

if (import.meta.main)
  serveLines<Request>(run, () => {
    for (const g of groups.values()) closeAllRaw(g.sockets);
  });
