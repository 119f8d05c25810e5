// Client side of the noisy neighbour: one user's sockets send valid and malformed frames at a
// fixed rate for a fixed time; the server is expected to refuse most of them (rate limit).
import type { FloodCmd, FloodResult } from "./commands.ts";
import { closeAll, frameType, openJoined, wsUrl } from "./sockets.ts";

/** Malformed frames, one of each kind the protocol names. */
const MALFORMED: ReadonlyArray<string | Uint8Array> = [
  "this is not json",
  "[1,2,3]",
  '{"type":"message"}',
  '{"type":"Message!","content":"x"}',
  '{"type":"no_such_command"}',
  '{"type":"join_room","room_name":"bad name!"}',
  '{"type":"message","content":"   "}',
  '{"type":"direct","user_id":"not-a-uuid","content":"x"}',
  new Uint8Array([1, 2, 3]),
];

export async function flood(cmd: FloodCmd): Promise<FloodResult> {
  const sockets: WebSocket[] = [];
  for (let i = 0; i < cmd.sockets; i++)
    sockets.push(await openJoined(wsUrl(cmd.target, i), cmd.room, 10_000));
  const out: FloodResult = {
    sent: 0,
    malformed: 0,
    rateLimited: 0,
    otherErrors: 0,
    echoes: 0,
    unexpectedCloses: 0,
  };
  for (const ws of sockets) {
    ws.onmessage = (e) => {
      const frame = String(e.data);
      if (frameType(frame) === "error") {
        if (frame.includes('"code":"rate_limited"')) out.rateLimited++;
        else out.otherErrors++;
      } else if (frame.includes('"content":"f|')) out.echoes++;
    };
    ws.onclose = () => out.unexpectedCloses++;
  }
  const start = performance.now();
  const everyMalformed =
    cmd.malformedShare > 0 ? Math.max(1, Math.round(1 / cmd.malformedShare)) : 0;
  await new Promise<void>((resolve) => {
    const ticker = setInterval(() => {
      const now = performance.now();
      if (now - start >= cmd.durationMs) {
        clearInterval(ticker);
        resolve();
        return;
      }
      const due = Math.floor((cmd.framesPerSec * (now - start)) / 1000) - out.sent;
      for (let k = 0; k < Math.min(due, 2000); k++) {
        const ws = sockets[out.sent % sockets.length];
        const n = out.sent++;
        if (everyMalformed > 0 && n % everyMalformed === 0) {
          ws?.send(MALFORMED[out.malformed++ % MALFORMED.length] ?? "");
        } else {
          ws?.send(`{"type":"message","content":"f|${n}"}`);
        }
      }
    }, 1);
  });
  await Bun.sleep(200);
  const closes = out.unexpectedCloses;
  await closeAll(sockets, 3000);
  return { ...out, unexpectedCloses: closes };
}
