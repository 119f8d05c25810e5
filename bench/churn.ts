// Client side of churn: workers loop connect → welcome → join_room → leave_room → close, each
// step awaited, until the time or operation budget is spent.
import type { ChurnCmd, ChurnResult } from "./commands.ts";
import { ensureRooms, frameType, openJoined, wsUrl } from "./sockets.ts";
import { round } from "./stats.ts";

/** Sends `leave_room`, waits for `room_left`, closes and waits for the close event. */
function leaveAndClose(ws: WebSocket, timeoutMs: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      ws.onmessage = null;
      ws.onclose = null;
      ws.close();
      reject(new Error("timeout in leave/close"));
    }, timeoutMs);
    ws.onmessage = (e) => {
      const type = frameType(String(e.data));
      if (type === "room_left") ws.close();
      else if (type === "error") ws.close(1000, "error");
    };
    ws.onclose = () => {
      clearTimeout(timer);
      resolve();
    };
    ws.send('{"type":"leave_room"}');
  });
}

export async function churn(cmd: ChurnCmd): Promise<ChurnResult> {
  if (cmd.create) await ensureRooms(cmd.target, [cmd.room], cmd.opTimeoutMs);
  const start = performance.now();
  const deadline = start + cmd.durationMs;
  let started = 0;
  let ops = 0;
  let failed = 0;
  const errors = new Set<string>();
  const worker = async () => {
    while (performance.now() < deadline && started < cmd.maxOps) {
      const i = started++;
      try {
        const ws = await openJoined(wsUrl(cmd.target, i), cmd.room, cmd.opTimeoutMs);
        await leaveAndClose(ws, cmd.opTimeoutMs);
        ops++;
      } catch (e) {
        failed++;
        if (errors.size < 5) errors.add(e instanceof Error ? e.message : String(e));
      }
    }
  };
  const progress = setInterval(
    () => process.stderr.write(`[client ${process.pid}] churn ${ops} ops\n`),
    1000,
  );
  await Promise.all(Array.from({ length: cmd.concurrency }, worker));
  clearInterval(progress);
  const ms = performance.now() - start;
  return {
    ops,
    failed,
    ms: round(ms, 1),
    opsPerSec: Math.round((ops * 1000) / ms),
    errors: [...errors],
  };
}
