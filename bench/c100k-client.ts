// Load client of the 100k-connections benchmark (bench/c100k.ts): a separate Bun process holding
// up to C100K_MAX_SOCKETS raw WebSockets (bench/raw-ws.ts), driven over stdin/stdout one JSON
// line at a time. `open` connects its share (token i's socket goes to hosts[(offset+i) % hosts]
// and ports[(offset+i) % ports]) and waits for each `welcome` (authenticated, counted
// cluster-wide); `arm` starts watching every socket for one broadcast; `collect` waits for it and
// answers each socket's latency from the send time, on the harness's clock (`clock` lets the
// harness measure this process's clock offset). Progress goes to stderr.
import { readFileSync } from "node:fs";
import { serveLines } from "./line-serve.ts";
import { RawSocket } from "./raw-ws.ts";
import { frameType, pool } from "./sockets.ts";
import { round } from "./stats.ts";

/** Under the 20,000 open files per process, with room for Bun's own descriptors. */
export const C100K_MAX_SOCKETS = 19_000;

export interface C100kOpenCmd {
  op: "open";
  /** A JSON file holding `{ "tokens": string[] }`: one socket per token. */
  file: string;
  hosts: string[];
  ports: number[];
  /** Global index of this client's first socket (spreads hosts and ports over all clients). */
  offset: number;
  concurrency: number;
  timeoutMs: number;
}
export interface C100kOpenResult {
  opened: number;
  failed: number;
  ms: number;
  errors: string[];
}
export interface C100kCollectResult {
  sockets: number;
  received: number;
  /** Sockets that did not get the broadcast (open or not). */
  lost: number;
  duplicates: number;
  /** Sockets the server closed before or during the wait. */
  closed: number;
  /** Per receiving socket: receipt − send time, ms, on the harness's clock. */
  latenciesMs: number[];
}

const log = (msg: string) => process.stderr.write(`[c100k-client ${process.pid}] ${msg}\n`);
/** Wall-clock milliseconds with sub-millisecond resolution (comparable across processes). */
const epoch = () => performance.timeOrigin + performance.now();

const sockets: RawSocket[] = [];
let closed = 0;
let got = new Uint32Array(0);
let at = new Float64Array(0);
let needle: Buffer | null = null;

function openOne(host: string, port: number, token: string, timeoutMs: number): Promise<RawSocket> {
  const deadline = performance.now() + timeoutMs;
  return RawSocket.connect(host, port, `/api/v1/ws?token=${token}`, timeoutMs).then(
    (ws) =>
      new Promise<RawSocket>((resolve, reject) => {
        let done = false;
        const finish = (why: string | null) => {
          if (done) return;
          done = true;
          clearTimeout(timer);
          ws.onmessage = null;
          ws.onclose = null;
          if (why === null) return resolve(ws);
          ws.close();
          reject(new Error(why));
        };
        const timer = setTimeout(
          () => finish("timeout waiting for welcome"),
          Math.max(1, deadline - performance.now()),
        );
        ws.onclose = () => finish("closed before welcome");
        ws.onmessage = (buf, start, end) => {
          const frame = buf.toString("utf8", start, Math.min(end, start + 300));
          const type = frameType(frame);
          if (type === "welcome") finish(null);
          else finish(`expected welcome, got ${frame.slice(0, 120)}`);
        };
      }),
  );
}

async function open(cmd: C100kOpenCmd): Promise<C100kOpenResult> {
  const { tokens } = JSON.parse(readFileSync(cmd.file, "utf8")) as { tokens: string[] };
  if (sockets.length + tokens.length > C100K_MAX_SOCKETS)
    throw new Error(`more than ${C100K_MAX_SOCKETS} sockets in one process`);
  const errors = new Set<string>();
  let failed = 0;
  const start = performance.now();
  const progress = setInterval(() => log(`open ${sockets.length}/${tokens.length}`), 2000);
  try {
    await pool(tokens.length, cmd.concurrency, async (i) => {
      const g = cmd.offset + i;
      const host = cmd.hosts[g % cmd.hosts.length] ?? "127.0.0.1";
      const port = cmd.ports[g % cmd.ports.length] ?? 0;
      try {
        const ws = await openOne(host, port, tokens[i] ?? "", cmd.timeoutMs);
        ws.onclose = () => closed++;
        sockets.push(ws);
      } catch (e) {
        failed++;
        if (errors.size < 5) errors.add(e instanceof Error ? e.message : String(e));
      }
    });
  } finally {
    clearInterval(progress);
  }
  return {
    opened: sockets.length,
    failed,
    ms: round(performance.now() - start, 1),
    errors: [...errors],
  };
}

/** Watches every socket for frames whose content starts with `marker|`. */
function arm(marker: string): { sockets: number } {
  needle = Buffer.from(`"content":"${marker}|`);
  got = new Uint32Array(sockets.length);
  at = new Float64Array(sockets.length);
  const n = needle;
  sockets.forEach((ws, j) => {
    ws.onmessage = (buf, start, end) => {
      const k = buf.indexOf(n, start);
      if (k < 0 || k + n.length > end) return;
      if (got[j] === 0) at[j] = epoch();
      got[j] = (got[j] ?? 0) + 1;
    };
  });
  return { sockets: sockets.length };
}

async function collect(cmd: {
  sentAt: number;
  offsetMs: number;
  waitMs: number;
}): Promise<C100kCollectResult> {
  const deadline = performance.now() + cmd.waitMs;
  const count = () => {
    let r = 0;
    for (let j = 0; j < got.length; j++) if ((got[j] ?? 0) > 0) r++;
    return r;
  };
  while (count() < sockets.length - closed && performance.now() < deadline) await Bun.sleep(10);
  // A moment more for a second copy, if one is coming.
  await Bun.sleep(200);
  const latenciesMs: number[] = [];
  let duplicates = 0;
  for (let j = 0; j < got.length; j++) {
    const g = got[j] ?? 0;
    if (g === 0) continue;
    duplicates += g - 1;
    latenciesMs.push(round((at[j] ?? 0) - cmd.offsetMs - cmd.sentAt, 3));
  }
  for (const ws of sockets) ws.onmessage = null;
  return {
    sockets: sockets.length,
    received: latenciesMs.length,
    lost: sockets.length - latenciesMs.length,
    duplicates,
    closed,
    latenciesMs,
  };
}

type Request =
  | ({ id: number } & C100kOpenCmd)
  | { id: number; op: "clock" }
  | { id: number; op: "arm"; marker: string }
  | { id: number; op: "collect"; sentAt: number; offsetMs: number; waitMs: number }
  | { id: number; op: "exit" };

async function run(req: Request): Promise<unknown> {
  switch (req.op) {
    case "open":
      return open(req);
    case "clock":
      return { now: epoch() };
    case "arm":
      return arm(req.marker);
    case "collect":
      return collect(req);
    case "exit":
      return {};
  }
}

if (import.meta.main)
  serveLines<Request>(
    run,
    () => {
      for (const ws of sockets) {
        ws.onclose = null;
        ws.close();
      }
    },
    200,
  );
