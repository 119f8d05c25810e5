// Recovery after a reconnect (`join_room` with `since`), the order that leaves no gap and no
// duplicate while messages keep flowing: the node hears the room first, the joining socket's
// live messages are held back in a buffer meanwhile, then history after `since` is read, merged
// with the buffer, sorted by seq, de-duplicated and checked to continue `since` without a hole;
// the socket gets that list and goes live in one synchronous step (centrifuge's recovery).
import type { Position } from "../history/history.ts";
import type { ChatMessage } from "../protocol.ts";
import type { Conn } from "./connection.ts";

/** A socket joining a room: what arrives for the room while its history is read. */
export interface Joining {
  conn: Conn;
  buffer: ChatMessage[];
}

/** What a join tells the socket: the room's position, whether it recovered, what to replay. */
export interface Entered {
  position: Position;
  /** Only when the join asked for recovery. */
  recovered: boolean | undefined;
  /** Messages for the socket, in seq order, before it goes live. */
  replay: ChatMessage[];
}

/**
 * The messages after `after`, from history and buffer together, when they continue it with no
 * hole up to `top` (the latest seq the history knew) and beyond; null when that cannot be shown.
 */
export function continuing(
  after: number,
  top: number,
  fromHistory: readonly ChatMessage[],
  buffered: readonly ChatMessage[],
): ChatMessage[] | null {
  const bySeq = new Map<number, ChatMessage>();
  for (const m of fromHistory) if ((m.seq ?? 0) > after) bySeq.set(m.seq as number, m);
  for (const m of buffered) if ((m.seq ?? 0) > after) bySeq.set(m.seq as number, m);
  const seqs = [...bySeq.keys()].sort((a, b) => a - b);
  let expected = after + 1;
  for (const seq of seqs) {
    if (seq !== expected) return null;
    expected++;
  }
  if (expected - 1 < top) return null;
  return seqs.map((s) => bySeq.get(s) as ChatMessage);
}

/** The join's answer from what the history said and what arrived meanwhile. */
export function entered(
  since: Position | undefined,
  read: { ok: true; messages: ChatMessage[]; top: Position } | { ok: false; top: Position },
  buffer: readonly ChatMessage[],
): Entered {
  const top = read.top;
  // Live messages of the room's current stream that came after the position read: they follow
  // room_joined, whose seq is the read's, so the first message after it is always seq + 1.
  const live = buffer.filter((m) => m.epoch === top.epoch && (m.seq ?? 0) > top.seq);
  const position = { epoch: top.epoch, seq: top.seq };
  if (since === undefined) return { position, recovered: undefined, replay: live };
  if (read.ok && since.epoch === top.epoch) {
    const fromBuffer = buffer.filter((m) => m.epoch === top.epoch);
    const replay = continuing(since.seq, top.seq, read.messages, fromBuffer);
    if (replay !== null) return { position, recovered: true, replay };
  }
  return { position, recovered: false, replay: live };
}
