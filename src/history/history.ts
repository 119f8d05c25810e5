// Room history: every room message gets `seq` (1 for the room's first, then +1, no gaps) within
// the room's `epoch` (a string, new whenever the room's stream starts or is lost), and the last
// ROOM_HISTORY_SIZE messages are kept for ROOM_HISTORY_TTL_SECONDS after the room's last one —
// for the `history` command and for recovery after a reconnect (`join_room` with `since`).
// One interface; memory (memory.ts: one node, bounded by HISTORY_MAX_BYTES) and Redis (redis.ts:
// the cluster; seq, stream entry and publish are one atomic Lua step) implementations; one
// contract suite (test/contract/history.ts).
import type { ChatMessage } from "../protocol.ts";

export interface Position {
  epoch: string;
  /** The latest seq; 0 when the epoch has no message yet. */
  seq: number;
}

/** A room message with its place in the room's stream. */
export interface SeqMessage extends ChatMessage {
  seq: number;
  epoch: string;
}

export interface HistoryLimits {
  /** Messages kept per room; 0: none kept (seqs are still given). */
  size: number;
  /** A room's stream lives this long after its last message (ms); then it is lost (new epoch). */
  ttlMs: number;
  /** Memory implementation: bytes of history one node keeps in all; the oldest go first. */
  maxBytes: number;
}

/**
 * How a Redis append also publishes, in the same atomic step. Appends to one room that are
 * queued together go out as ONE payload on `channel`:
 * `head + firstSeq + mid + epoch + open + item₁ + "," + item₂ … + close`, where message k of the
 * batch has seq firstSeq + k and its item is `itemHead + <the message's JSON> + itemTail` (the
 * broker builds these parts; the message is serialised once, by the history).
 */
export interface Announce {
  channel: string;
  head: string;
  mid: string;
  open: string;
  close: string;
  itemHead: string;
  /** This message's own part after its JSON (e.g. its sender's socket). */
  itemTail: string;
}

export type Since =
  /** Every message after the position, oldest first (empty when there is none). */
  | { ok: true; messages: SeqMessage[]; top: Position }
  /** Cannot be guaranteed: another epoch, or the history no longer holds seq + 1. */
  | { ok: false; top: Position };

export interface History {
  /**
   * Gives `m` the room's next seq, keeps it (when size > 0) and — Redis, with `announce` —
   * publishes it, all in one step. Returns the message with its seq and epoch. Redis: appends
   * made in one event-loop turn go to Redis as one script call (one round trip, one publish per
   * room); their order within a room is the order of the calls.
   */
  append(room: string, m: ChatMessage, now: number, announce?: Announce): Promise<SeqMessage>;
  /**
   * The same without a round trip, where the history lives in this process (memory): the
   * message hot path of one node stays synchronous. Undefined for a remote history.
   */
  appendNow?(room: string, m: ChatMessage, now: number): SeqMessage;
  /** The room's position now (an epoch is made when the room has none; seq 0 then). */
  position(room: string, now: number): Promise<Position>;
  /** Everything after `since`, when the history can guarantee it. */
  since(room: string, since: Position, now: number): Promise<Since>;
  /** The newest `limit` kept messages with seq < `before` (any seq when undefined), oldest first. */
  page(
    room: string,
    before: number | undefined,
    limit: number,
    now: number,
  ): Promise<{ messages: SeqMessage[]; top: Position }>;
  /** The room is gone (closed or removed): its stream and epoch go too. */
  drop(room: string): Promise<void>;
  /** Entry counts of the in-process maps behind this part (operators' `GET /ws/internals`); cheap. */
  sizes?(): Record<string, number>;
  dispose(): Promise<void>;
}
