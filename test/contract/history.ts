// The History contract: every implementation (memory, Redis) runs this same suite. Call
// `historyContract(name, open, { pair })` from a *.test.ts file. Time is real (`Date.now()`):
// Redis keeps its own clock for TTLs, so the TTL cases use a small ttlMs and sleep past it.
import { afterEach, describe, expect, test } from "bun:test";
import type { History, HistoryLimits, SeqMessage } from "../../src/history/history.ts";
import type { ChatMessage } from "../../src/protocol.ts";

/** A history with its own, empty state. */
export type HistoryFactory = (limits: HistoryLimits) => Promise<History>;
/**
 * Two histories over ONE shared state, as two nodes of a cluster see it (Redis: two clients, one
 * prefix). Without it the "two nodes" cases run on one history used twice.
 */
export type HistoryPairFactory = (limits: HistoryLimits) => Promise<[History, History]>;

export interface HistoryContractOptions {
  pair?: HistoryPairFactory;
}

const LIMITS: HistoryLimits = { size: 100, ttlMs: 60_000, maxBytes: 16 * 1024 * 1024 };
const ALICE = "11111111-1111-4111-8111-111111111111";

let ids = 0;
export const chat = (room: string, content: string): ChatMessage => ({
  id: `m-${++ids}`,
  room,
  from: ALICE,
  content,
  sent_at: "2026-12-02T00:00:00.000Z",
});

const seqs = (ms: SeqMessage[]): number[] => ms.map((m) => m.seq);
const contents = (ms: SeqMessage[]): string[] => ms.map((m) => m.content);

export function historyContract(
  name: string,
  open: HistoryFactory,
  options: HistoryContractOptions = {},
): void {
  describe(`History contract: ${name}`, () => {
    let opened: History[] = [];
    const make = async (limits: Partial<HistoryLimits> = {}) => {
      const h = await open({ ...LIMITS, ...limits });
      opened.push(h);
      return h;
    };
    const makePair = async (limits: Partial<HistoryLimits> = {}): Promise<[History, History]> => {
      if (!options.pair) {
        const h = await make(limits);
        return [h, h];
      }
      const pair = await options.pair({ ...LIMITS, ...limits });
      opened.push(...pair);
      return pair;
    };
    /** Appends `n` messages "<prefix>1".."<prefix>n" one after another. */
    const fill = async (h: History, room: string, n: number, prefix = "c") => {
      const out: SeqMessage[] = [];
      for (let i = 1; i <= n; i++)
        out.push(await h.append(room, chat(room, prefix + i), Date.now()));
      return out;
    };
    afterEach(async () => {
      for (const h of opened) await h.dispose();
      opened = [];
    });

    test("the first message gets seq 1, then +1; the message is copied with seq and epoch", async () => {
      const h = await make();
      const m = chat("lobby", 'halo é漢 "quoted" \\ \n');
      const a = await h.append("lobby", m, Date.now());
      expect(a).toEqual({ ...m, seq: 1, epoch: a.epoch });
      expect(typeof a.epoch).toBe("string");
      expect(a.epoch.length).toBeGreaterThan(0);
      expect(m).not.toHaveProperty("seq");
      const b = await h.append("lobby", chat("lobby", "two"), Date.now());
      expect(b.seq).toBe(2);
      expect(b.epoch).toBe(a.epoch);
      expect(await h.position("lobby", Date.now())).toEqual({ epoch: a.epoch, seq: 2 });
      const back = await h.since("lobby", { epoch: a.epoch, seq: 0 }, Date.now());
      expect(back).toEqual({ ok: true, messages: [a, b], top: { epoch: a.epoch, seq: 2 } });
    });

    test("appendNow, where the history has it, continues the same stream synchronously", async () => {
      const h = await make();
      if (h.appendNow === undefined) return; // a remote history has none
      const a = await h.append("r", chat("r", "1"), Date.now());
      const b = h.appendNow("r", chat("r", "2"), Date.now());
      expect(b).toMatchObject({ seq: 2, epoch: a.epoch, content: "2" });
      expect(await h.append("r", chat("r", "3"), Date.now())).toMatchObject({ seq: 3 });
      const back = await h.since("r", { epoch: a.epoch, seq: 1 }, Date.now());
      expect(back.ok && back.messages.map((m) => m.seq)).toEqual([2, 3]);
    });

    test("rooms have their own seqs and epochs", async () => {
      const h = await make();
      const a = await h.append("a", chat("a", "1"), Date.now());
      await h.append("a", chat("a", "2"), Date.now());
      const b = await h.append("b", chat("b", "1"), Date.now());
      expect(b.seq).toBe(1);
      expect(b.epoch).not.toBe(a.epoch);
      expect((await h.position("a", Date.now())).seq).toBe(2);
    });

    test("500 concurrent appends from two nodes: seqs 1..500, no gap, no duplicate", async () => {
      const [h1, h2] = await makePair({ size: 1000 });
      const sent = await Promise.all(
        Array.from({ length: 500 }, (_, i) =>
          (i % 2 === 0 ? h1 : h2).append("busy", chat("busy", `c${i}`), Date.now()),
        ),
      );
      expect(seqs(sent).toSorted((x, y) => x - y)).toEqual(
        Array.from({ length: 500 }, (_, i) => i + 1),
      );
      const epoch = sent[0]?.epoch;
      expect(sent.every((m) => m.epoch === epoch)).toBe(true);
      const back = await h2.since("busy", { epoch: epoch ?? "", seq: 0 }, Date.now());
      if (!back.ok) throw new Error("since from 0 should be ok");
      expect(seqs(back.messages)).toEqual(Array.from({ length: 500 }, (_, i) => i + 1));
      const bySeq = new Map(sent.map((m) => [m.seq, m.content]));
      expect(contents(back.messages)).toEqual(back.messages.map((m) => bySeq.get(m.seq) ?? ""));
    });

    test("two nodes see one position and one stream", async () => {
      const [h1, h2] = await makePair();
      const p = await h1.position("r", Date.now());
      expect(await h2.position("r", Date.now())).toEqual(p);
      const m = await h2.append("r", chat("r", "x"), Date.now());
      expect(m).toMatchObject({ seq: 1, epoch: p.epoch });
      expect(await h1.since("r", p, Date.now())).toEqual({
        ok: true,
        messages: [m],
        top: { epoch: p.epoch, seq: 1 },
      });
    });

    test("the epoch stays across appends; drop makes a new one and seq restarts at 1", async () => {
      const h = await make();
      const sent = await fill(h, "r", 5);
      expect(new Set(sent.map((m) => m.epoch)).size).toBe(1);
      const old = sent[0]?.epoch ?? "";
      await h.drop("r");
      await h.drop("never-existed");
      const p = await h.position("r", Date.now());
      expect(p.seq).toBe(0);
      expect(p.epoch).not.toBe(old);
      const again = await h.append("r", chat("r", "new"), Date.now());
      expect(again).toMatchObject({ seq: 1, epoch: p.epoch });
      expect((await h.since("r", { epoch: old, seq: 5 }, Date.now())).ok).toBe(false);
      expect((await h.page("r", undefined, 10, Date.now())).messages).toEqual([again]);
    });

    test("a room quiet for ttlMs is lost: new epoch, seq restarts, nothing kept", async () => {
      // Sleeps only overshoot: each "still alive" check has 100+ ms of margin.
      const h = await make({ ttlMs: 300 });
      const sent = await fill(h, "r", 3);
      const old = sent[0]?.epoch ?? "";
      await Bun.sleep(200);
      // an append keeps the stream alive for another ttlMs
      const fourth = await h.append("r", chat("r", "c4"), Date.now());
      expect(fourth).toMatchObject({ seq: 4, epoch: old });
      await Bun.sleep(150); // 350 ms after the first three, 150 after the fourth
      expect(await h.position("r", Date.now())).toEqual({ epoch: old, seq: 4 });
      await Bun.sleep(350);
      const since = await h.since("r", { epoch: old, seq: 2 }, Date.now());
      expect(since.ok).toBe(false);
      expect(since.top.seq).toBe(0);
      expect(since.top.epoch).not.toBe(old);
      const next = await h.append("r", chat("r", "after"), Date.now());
      expect(next).toMatchObject({ seq: 1, epoch: since.top.epoch });
      expect((await h.page("r", undefined, 10, Date.now())).messages).toEqual([next]);
    });

    test("size cap: the last `size` messages are kept", async () => {
      const h = await make({ size: 3 });
      await fill(h, "r", 7);
      const page = await h.page("r", undefined, 10, Date.now());
      expect(seqs(page.messages)).toEqual([5, 6, 7]);
      expect(contents(page.messages)).toEqual(["c5", "c6", "c7"]);
      expect(page.top.seq).toBe(7);
    });

    test("since: exactly the missed messages, oldest first; [] when up to date", async () => {
      const h = await make({ size: 10 });
      const sent = await fill(h, "r", 6);
      const epoch = sent[0]?.epoch ?? "";
      const top = { epoch, seq: 6 };
      expect(await h.since("r", { epoch, seq: 3 }, Date.now())).toEqual({
        ok: true,
        messages: sent.slice(3),
        top,
      });
      expect(await h.since("r", { epoch, seq: 6 }, Date.now())).toEqual({
        ok: true,
        messages: [],
        top,
      });
      expect(await h.since("r", { epoch, seq: 0 }, Date.now())).toEqual({
        ok: true,
        messages: sent,
        top,
      });
    });

    test("since is not ok for another epoch, a seq past the latest, or a dropped seq + 1", async () => {
      const h = await make({ size: 3 });
      const sent = await fill(h, "r", 6); // keeps 4, 5, 6
      const epoch = sent[0]?.epoch ?? "";
      const top = { epoch, seq: 6 };
      expect(await h.since("r", { epoch: "other", seq: 3 }, Date.now())).toEqual({
        ok: false,
        top,
      });
      expect(await h.since("r", { epoch, seq: 7 }, Date.now())).toEqual({ ok: false, top });
      expect(await h.since("r", { epoch, seq: 2 }, Date.now())).toEqual({ ok: false, top });
      expect(await h.since("r", { epoch, seq: -1 }, Date.now())).toEqual({ ok: false, top });
      // seq 3 missed 4..6, all kept
      const ok = await h.since("r", { epoch, seq: 3 }, Date.now());
      expect(ok.ok && seqs(ok.messages)).toEqual([4, 5, 6]);
    });

    test("page: the newest `limit` below `before`, oldest first", async () => {
      const h = await make({ size: 10 });
      await fill(h, "r", 12); // keeps 3..12
      const at = (before: number | undefined, limit: number) =>
        h.page("r", before, limit, Date.now()).then((p) => seqs(p.messages));
      expect(await at(undefined, 4)).toEqual([9, 10, 11, 12]);
      expect(await at(undefined, 50)).toEqual([3, 4, 5, 6, 7, 8, 9, 10, 11, 12]);
      expect(await at(9, 3)).toEqual([6, 7, 8]);
      expect(await at(6, 10)).toEqual([3, 4, 5]);
      expect(await at(4, 10)).toEqual([3]);
      expect(await at(3, 10)).toEqual([]);
      expect(await at(1, 10)).toEqual([]);
      expect(await at(100, 2)).toEqual([11, 12]);
      expect(await at(undefined, 0)).toEqual([]);
      const p = await h.page("r", 9, 1, Date.now());
      expect(p.messages[0]).toMatchObject({ seq: 8, content: "c8", room: "r", from: ALICE });
      expect(p.top).toEqual({ epoch: p.messages[0]?.epoch ?? "", seq: 12 });
      const empty = await h.page("nobody-wrote", undefined, 10, Date.now());
      expect(empty.messages).toEqual([]);
      expect(empty.top.seq).toBe(0);
    });

    test("size 0: seqs and epochs still given, nothing kept", async () => {
      const h = await make({ size: 0 });
      const sent = await fill(h, "r", 3);
      expect(seqs(sent)).toEqual([1, 2, 3]);
      const epoch = sent[0]?.epoch ?? "";
      expect(sent.every((m) => m.epoch === epoch)).toBe(true);
      const top = { epoch, seq: 3 };
      expect(await h.page("r", undefined, 10, Date.now())).toEqual({ messages: [], top });
      expect(await h.since("r", { epoch, seq: 3 }, Date.now())).toEqual({
        ok: true,
        messages: [],
        top,
      });
      expect(await h.since("r", { epoch, seq: 2 }, Date.now())).toEqual({ ok: false, top });
      expect(await h.since("r", { epoch: "other", seq: 3 }, Date.now())).toEqual({
        ok: false,
        top,
      });
    });

    test("position makes an epoch with seq 0; the first append continues it", async () => {
      const h = await make();
      const p = await h.position("fresh", Date.now());
      expect(p.seq).toBe(0);
      expect(p.epoch.length).toBeGreaterThan(0);
      expect(await h.position("fresh", Date.now())).toEqual(p);
      expect(await h.since("fresh", p, Date.now())).toEqual({ ok: true, messages: [], top: p });
      const m = await h.append("fresh", chat("fresh", "first"), Date.now());
      expect(m).toMatchObject({ seq: 1, epoch: p.epoch });
      expect(await h.since("fresh", p, Date.now())).toEqual({
        ok: true,
        messages: [m],
        top: { epoch: p.epoch, seq: 1 },
      });
    });
  });
}
