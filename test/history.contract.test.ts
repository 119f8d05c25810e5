// Runs the History contract against every implementation: memory, and Redis on a redis-server
// of this file's own (two clients on one prefix play two nodes of a cluster). Then what only the
// memory history has: the node-wide byte budget and its bounds.
import { describe, expect, test } from "bun:test";
import type { HistoryLimits, SeqMessage } from "../src/history/history.ts";
import { MemoryHistory, messageBytes } from "../src/history/memory.ts";
import { RedisHistory } from "../src/history/redis.ts";
import { chat, historyContract } from "./contract/history.ts";
import { freshPrefix } from "./redis-rooms.ts";
import { redisAvailable, sharedRedis } from "./redis-server.ts";

historyContract("memory", async (limits) => new MemoryHistory(limits));

if (redisAvailable()) {
  const redis = sharedRedis();
  const openRedis = async (limits: HistoryLimits, prefix: string) => {
    const h = new RedisHistory(await redis.client(), limits, prefix);
    await h.load();
    return h;
  };
  historyContract("redis", (limits) => openRedis(limits, freshPrefix()), {
    pair: async (limits) => {
      const prefix = freshPrefix();
      return [await openRedis(limits, prefix), await openRedis(limits, prefix)];
    },
  });
} else {
  describe.skip("History contract: redis (redis-server not found)", () => {
    test("skipped", () => {});
  });
}

const seqs = (ms: SeqMessage[]): number[] => ms.map((m) => m.seq);

describe("MemoryHistory: the node's byte budget", () => {
  test("over maxBytes the globally oldest messages go first, and since fails for them", async () => {
    const one = messageBytes(chat("a", "x"));
    const h = new MemoryHistory({ size: 100, ttlMs: 60_000, maxBytes: 4 * one });
    const a1 = await h.append("a", chat("a", "x"), 1);
    await h.append("b", chat("b", "x"), 2);
    await h.append("a", chat("a", "x"), 3);
    await h.append("b", chat("b", "x"), 4);
    expect(h.bytes).toBe(4 * one);
    await h.append("c", chat("c", "x"), 5); // evicts a1
    expect(h.bytes).toBe(4 * one);
    expect(seqs((await h.page("a", undefined, 10, 6)).messages)).toEqual([2]);
    expect(seqs((await h.page("b", undefined, 10, 6)).messages)).toEqual([1, 2]);
    expect((await h.since("a", { epoch: a1.epoch, seq: 0 }, 6)).ok).toBe(false);
    const fromOne = await h.since("a", { epoch: a1.epoch, seq: 1 }, 6);
    expect(fromOne.ok && seqs(fromOne.messages)).toEqual([2]);
    await h.append("c", chat("c", "x"), 7); // evicts b1
    await h.append("c", chat("c", "x"), 8); // evicts a2: room a keeps nothing
    expect(seqs((await h.page("a", undefined, 10, 9)).messages)).toEqual([]);
    expect(seqs((await h.page("b", undefined, 10, 9)).messages)).toEqual([2]);
    expect((await h.since("a", { epoch: a1.epoch, seq: 1 }, 9)).ok).toBe(false);
    expect(await h.since("a", { epoch: a1.epoch, seq: 2 }, 9)).toEqual({
      ok: true,
      messages: [],
      top: { epoch: a1.epoch, seq: 2 },
    });
    // the room goes on in its epoch
    expect(await h.append("a", chat("a", "x"), 10)).toMatchObject({ seq: 3, epoch: a1.epoch });
    expect(h.stats.messages).toBe(4);
  });

  test("a message larger than the whole budget is given a seq but not kept", async () => {
    const h = new MemoryHistory({ size: 10, ttlMs: 60_000, maxBytes: 1_000 });
    const big = await h.append("r", chat("r", "x".repeat(1_000)), 1);
    expect(big.seq).toBe(1);
    expect(h.bytes).toBe(0);
    expect((await h.page("r", undefined, 10, 2)).messages).toEqual([]);
  });

  test("200k messages of 1 KB in 1000 rooms with maxBytes 1 MB: bytes and queue stay bounded", async () => {
    const maxBytes = 1024 * 1024;
    const h = new MemoryHistory({ size: 100, ttlMs: 60_000, maxBytes });
    const content = "k".repeat(1024);
    let overBudget = 0;
    let maxQueued = 0;
    for (let i = 0; i < 200_000; i++) {
      const room = `room-${i % 1000}`;
      await h.append(room, chat(room, content), i);
      if (h.bytes > maxBytes) overBudget++;
      maxQueued = Math.max(maxQueued, h.stats.queued);
    }
    expect(overBudget).toBe(0);
    const one = messageBytes(chat("room-999", content));
    expect(h.stats.messages).toBe(Math.floor(maxBytes / one));
    expect(maxQueued).toBeLessThanOrEqual(2 * h.stats.messages + 1025);
    // the newest are the ones kept, and recoverable
    const last = await h.page("room-999", undefined, 100, 200_000);
    expect(last.top.seq).toBe(200);
    expect(last.messages.length).toBeGreaterThan(0);
    expect(seqs(last.messages).at(-1)).toBe(200);
  });

  test("the size cap's stale queue entries are compacted away", async () => {
    const h = new MemoryHistory({ size: 1, ttlMs: 60_000, maxBytes: 1 << 30 });
    // an old message at the head of the queue: the stale entries pile up behind it
    const old = await h.append("old", chat("old", "x"), 0);
    let maxQueued = 0;
    for (let i = 0; i < 100_000; i++) {
      await h.append("r", chat("r", "x"), 1 + (i >> 4));
      maxQueued = Math.max(maxQueued, h.stats.queued);
    }
    expect(h.stats.messages).toBe(2);
    expect(maxQueued).toBeLessThanOrEqual(2 * 2 + 1025);
    expect(await h.since("old", { epoch: old.epoch, seq: 0 }, 10_000)).toEqual({
      ok: true,
      messages: [old],
      top: { epoch: old.epoch, seq: 1 },
    });
    expect(seqs((await h.page("r", undefined, 5, 10_000)).messages)).toEqual([100_000]);
  });

  test("a room's ring shrinks as the budget takes its messages, which stay in order", async () => {
    // same-sized messages: the budget holds exactly 70
    const msg = (room: string) => ({ ...chat(room, "x"), id: "fixed-id" });
    const h = new MemoryHistory({
      size: 64,
      ttlMs: 60_000,
      maxBytes: 70 * messageBytes(msg("aaa")),
    });
    for (let i = 0; i < 64; i++) await h.append("aaa", msg("aaa"), i);
    for (let i = 0; i < 63; i++) {
      await h.append("bbb", msg("bbb"), 100 + i);
      const first = Math.max(1, i - 4);
      const kept = seqs((await h.page("aaa", undefined, 100, 200)).messages);
      expect(kept).toEqual(Array.from({ length: 65 - first }, (_, j) => first + j));
    }
    expect(h.stats.messages).toBe(70);
  });

  test("an idle room's messages are freed once its TTL has passed and others append", async () => {
    const h = new MemoryHistory({ size: 100, ttlMs: 1_000, maxBytes: 1 << 30 });
    const idle = await h.append("idle", chat("idle", "x"), 0);
    await h.append("idle", chat("idle", "x"), 10);
    await h.append("busy", chat("busy", "x"), 500);
    expect(h.stats.messages).toBe(3);
    await h.append("busy", chat("busy", "x"), 1_200);
    expect(h.stats.messages).toBe(2);
    // seen from the room, it is lost as any expired room is
    const p = await h.position("idle", 1_300);
    expect(p.seq).toBe(0);
    expect(p.epoch).not.toBe(idle.epoch);
    await h.drop("idle");
    await h.drop("busy");
    expect(h.stats).toEqual({ bytes: 0, messages: 0, rooms: 0, queued: h.stats.queued });
  });

  test("random appends, drops and expiries match a simple model", async () => {
    let seed = 42;
    const rand = (n: number) => {
      seed = (seed * 1_103_515_245 + 12_345) % 2_147_483_648;
      return seed % n;
    };
    for (const size of [1, 3, 17]) {
      const limits = { size, ttlMs: 500, maxBytes: 40 * messageBytes(chat("r0", "x")) };
      const h = new MemoryHistory(limits);
      // The model: per room its seq, epoch, last time and kept seqs; every kept message in
      // append order with its bytes.
      type Room = { seq: number; epoch: string; last: number; kept: number[] };
      const model = new Map<string, Room>();
      let order: { room: string; seq: number; bytes: number }[] = [];
      const total = () => order.reduce((n, e) => n + e.bytes, 0);
      const forget = (room: string) => {
        order = order.filter((e) => e.room !== room);
        const r = model.get(room);
        if (r !== undefined) r.kept = [];
      };
      const expired = (r: Room, now: number) => now - r.last >= limits.ttlMs;
      let now = 0;
      for (let step = 0; step < 10_000; step++) {
        now += rand(20);
        const room = `r${rand(8)}`;
        let r = model.get(room);
        if (r !== undefined && expired(r, now)) {
          forget(room);
          model.delete(room);
          r = undefined;
        }
        const op = rand(100);
        if (op < 3) {
          await h.drop(room);
          forget(room);
          model.delete(room);
          continue;
        }
        if (op < 10) {
          const s = await h.since(room, { epoch: r?.epoch ?? "", seq: 0 }, now);
          if (r === undefined) model.set(room, { seq: 0, epoch: s.top.epoch, last: now, kept: [] });
          else expect(s.ok).toBe(r.seq === 0 || r.kept[0] === 1);
          continue;
        }
        const input = chat(room, "x");
        const m = await h.append(room, input, now);
        if (r === undefined) {
          r = { seq: 0, epoch: m.epoch, last: now, kept: [] };
          model.set(room, r);
        }
        expect(m).toMatchObject({ seq: r.seq + 1, epoch: r.epoch });
        r.seq++;
        r.last = now;
        r.kept.push(r.seq);
        order.push({ room, seq: r.seq, bytes: messageBytes(input) });
        if (r.kept.length > size) {
          const gone = r.kept.shift();
          order = order.filter((e) => !(e.room === room && e.seq === gone));
        }
        // expired rooms at the head of the order are freed; then the budget takes the oldest
        for (let head = order[0]; head !== undefined; head = order[0]) {
          const owner = model.get(head.room);
          if (owner === undefined || !expired(owner, now)) break;
          forget(head.room);
        }
        while (total() > limits.maxBytes) {
          const e = order.shift() as { room: string; seq: number };
          const owner = model.get(e.room) as Room;
          owner.kept = owner.kept.filter((q) => q !== e.seq);
        }
        for (const [name, state] of model) {
          if (expired(state, now)) continue; // a read would make it a new stream
          const page = await h.page(name, undefined, 1_000, now);
          expect(page.top).toEqual({ epoch: state.epoch, seq: state.seq });
          expect(seqs(page.messages)).toEqual(state.kept);
        }
        expect(h.bytes).toBe(total());
      }
    }
  });
});
