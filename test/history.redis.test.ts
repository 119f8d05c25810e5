// What the History contract cannot see of the Redis history: its keys and TTLs, the publish made
// in the same step as the append, the NOSCRIPT fallback, and Redis going away and coming back
// empty (a new epoch, so a stale `since` is refused rather than answered with other messages).
import { describe, expect, test } from "bun:test";
import type { RedisClient } from "bun";
import { BrokerUnavailableError } from "../src/cluster/broker.ts";
import type { Announce, HistoryLimits } from "../src/history/history.ts";
import { RedisHistory } from "../src/history/redis.ts";
import { chat } from "./contract/history.ts";
import { freshPrefix } from "./redis-rooms.ts";
import { redisAvailable, sharedRedis } from "./redis-server.ts";

const LIMITS: HistoryLimits = { size: 5, ttlMs: 60_000, maxBytes: 1 << 20 };

const until = async (cond: () => boolean, ms: number): Promise<boolean> => {
  const deadline = Date.now() + ms;
  while (!cond() && Date.now() < deadline) await Bun.sleep(10);
  return cond();
};

describe.skipIf(!redisAvailable())("RedisHistory", () => {
  const shared = sharedRedis();
  const open = async (prefix = freshPrefix(), limits = LIMITS, timeoutMs?: number) => {
    const h = new RedisHistory(await shared.client(), limits, prefix, timeoutMs);
    await h.load();
    return h;
  };
  let adminClient: RedisClient | undefined;
  const admin = async (): Promise<RedisClient> => {
    adminClient ??= await shared.client();
    return adminClient;
  };
  const keys = async (prefix: string): Promise<string[]> => {
    const found = (await (await admin()).send("KEYS", [`${prefix}*`])) as string[];
    return found.map((k) => k.slice(prefix.length)).sort();
  };

  test("key layout: a meta hash and a list capped at size, both expiring; drop removes both", async () => {
    const p = freshPrefix();
    const h = await open(p);
    const pos = await h.position("quiet", Date.now());
    expect(await keys(p)).toEqual(["hmeta:quiet"]);
    for (let i = 1; i <= 8; i++) await h.append("r", chat("r", `c${i}`), Date.now());
    expect(await keys(p)).toEqual(["hlist:r", "hmeta:quiet", "hmeta:r"]);
    const a = await admin();
    const meta = (await a.send("HGETALL", [`${p}hmeta:r`])) as Record<string, string>;
    expect(meta.s).toBe("8");
    expect(typeof meta.e).toBe("string");
    expect(await a.send("HGETALL", [`${p}hmeta:quiet`])).toEqual({ e: pos.epoch, s: "0" });
    // The newest `size` messages, oldest first: seq 4 … 8 (the last is the meta hash's s).
    const entries = (await a.send("LRANGE", [`${p}hlist:r`, "0", "-1"])) as string[];
    expect(entries.map((e) => (JSON.parse(e) as { content: string }).content)).toEqual([
      "c4",
      "c5",
      "c6",
      "c7",
      "c8",
    ]);
    expect(JSON.parse(entries[0] ?? "null")).toMatchObject({ content: "c4", room: "r" });
    for (const k of ["hmeta:r", "hlist:r", "hmeta:quiet"]) {
      const ttl = (await a.send("PTTL", [p + k])) as number;
      expect(ttl).toBeGreaterThan(0);
      expect(ttl).toBeLessThanOrEqual(LIMITS.ttlMs);
    }
    await h.drop("r");
    await h.drop("quiet");
    expect(await keys(p)).toEqual([]);
  });

  test("size 0 writes no list", async () => {
    const p = freshPrefix();
    const h = await open(p, { ...LIMITS, size: 0 });
    await h.append("r", chat("r", "x"), Date.now());
    expect(await keys(p)).toEqual(["hmeta:r"]);
  });

  test("a list left without its meta hash is discarded with the new epoch", async () => {
    const p = freshPrefix();
    const h = await open(p);
    const old = await h.append("r", chat("r", "old"), Date.now());
    await h.append("r", chat("r", "old2"), Date.now());
    await (await admin()).send("DEL", [`${p}hmeta:r`]);
    const m = await h.append("r", chat("r", "new"), Date.now());
    expect(m.seq).toBe(1);
    expect(m.epoch).not.toBe(old.epoch);
    expect((await h.page("r", undefined, 10, Date.now())).messages).toEqual([m]);
    expect((await h.since("r", { epoch: old.epoch, seq: 1 }, Date.now())).ok).toBe(false);
  });

  test("the announce is published in the same step: every append, in seq order, from two nodes", async () => {
    const p = freshPrefix();
    const [h1, h2] = [
      await open(p, { ...LIMITS, size: 1000 }),
      await open(p, { ...LIMITS, size: 1000 }),
    ];
    const channel = `${p}room:busy`;
    const sub = await shared.client();
    const got: string[] = [];
    await sub.subscribe(channel, (message) => got.push(message));
    const announce = (i: number): Announce => ({
      channel,
      head: '{"n":"x","s":',
      mid: ',"e":"',
      open: '","b":[',
      close: "]}",
      itemHead: "[",
      itemTail: `,${i}]`,
    });
    const sent = await Promise.all(
      Array.from({ length: 300 }, (_, i) =>
        (i % 2 === 0 ? h1 : h2).append("busy", chat("busy", `c${i}`), Date.now(), announce(i)),
      ),
    );
    // Appends of one turn are one publish per node and room: far fewer payloads than messages.
    const published = () =>
      got.map((g) => JSON.parse(g) as { s: number; e: string; b: [{ content: string }, number][] });
    expect(await until(() => published().reduce((n, b) => n + b.b.length, 0) >= 300, 3_000)).toBe(
      true,
    );
    expect(got.length).toBeLessThan(300);
    const epoch = sent[0]?.epoch ?? "";
    const seqs: number[] = [];
    const items: number[] = [];
    for (const batch of published()) {
      expect(batch.e).toBe(epoch);
      batch.b.forEach(([m, item], k) => {
        seqs.push(batch.s + k);
        items.push(item);
        // the item carries the message as the history stored it
        expect(m.content).toBe(`c${item}`);
      });
    }
    expect(seqs).toEqual(Array.from({ length: 300 }, (_, i) => i + 1));
    // each message published with the seq its append returned, each node's in its call order
    for (const [k, item] of items.entries()) expect(sent[item]?.seq).toBe(k + 1);
    for (const parity of [0, 1]) {
      const mine = items.filter((i) => i % 2 === parity);
      expect(mine).toEqual([...mine].sort((a, b) => a - b));
    }
    // and what was published is what the history holds
    const back = await h2.since("busy", { epoch, seq: 0 }, Date.now());
    expect(back.ok && back.messages.map((m) => m.content)).toEqual(items.map((i) => `c${i}`));
    await sub.unsubscribe(channel);
  });

  test("appends to several rooms in one turn: one call, each room its own gap-free seqs", async () => {
    const p = freshPrefix();
    const h = await open(p, { ...LIMITS, size: 1000 });
    const rooms = ["a", "b", "c"];
    const sent = await Promise.all(
      Array.from({ length: 90 }, (_, i) => {
        const room = rooms[i % 3] as string;
        return h.append(room, chat(room, `m${i}`), Date.now());
      }),
    );
    for (const room of rooms) {
      const mine = sent.filter((m) => m.room === room);
      expect(mine.map((m) => m.seq)).toEqual(Array.from({ length: 30 }, (_, i) => i + 1));
      expect(new Set(mine.map((m) => m.epoch)).size).toBe(1);
      const page = await h.page(room, undefined, 100, Date.now());
      expect(page.messages.map((m) => m.content)).toEqual(mine.map((m) => m.content));
    }
    expect(new Set(sent.map((m) => m.epoch)).size).toBe(3);
  });

  test("after SCRIPT FLUSH the scripts are sent again (EVAL on NOSCRIPT)", async () => {
    const h = await open();
    await h.append("r", chat("r", "a"), Date.now());
    await (await admin()).send("SCRIPT", ["FLUSH"]);
    expect((await h.append("r", chat("r", "b"), Date.now())).seq).toBe(2);
    expect((await h.position("r", Date.now())).seq).toBe(2);
  });

  test("a silent Redis: calls reject after timeoutMs", async () => {
    const h = await open(freshPrefix(), LIMITS, 200);
    await h.append("r", chat("r", "a"), Date.now());
    await (await admin()).send("CLIENT", ["PAUSE", "500", "ALL"]);
    const t0 = performance.now();
    const err = await h.append("r", chat("r", "b"), Date.now()).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(BrokerUnavailableError);
    expect(performance.now() - t0).toBeLessThan(450);
    await Bun.sleep(400);
    // the paused append ran once Redis woke up; nothing was lost or doubled
    expect(await h.position("r", Date.now())).toMatchObject({ seq: 2 });
  });

  // Last: it kills the shared server.
  test("Redis killed: calls reject, not hang; restarted empty: a new epoch, old since not ok", async () => {
    const h = await open(freshPrefix(), LIMITS, 1_000);
    const sent = await h.append("r", chat("r", "before"), Date.now());
    await h.append("r", chat("r", "before2"), Date.now());
    await shared.server.kill();
    for (const call of [
      () => h.append("r", chat("r", "lost"), Date.now()),
      () => h.position("r", Date.now()),
      () => h.since("r", { epoch: sent.epoch, seq: 1 }, Date.now()),
      () => h.page("r", undefined, 10, Date.now()),
      () => h.drop("r"),
    ]) {
      const t0 = performance.now();
      const err = await call().catch((e: unknown) => e);
      expect(err).toBeInstanceOf(BrokerUnavailableError);
      expect(performance.now() - t0).toBeLessThan(1_500);
    }
    await shared.server.restart();
    const deadline = Date.now() + 5_000;
    let pos: unknown;
    while (Date.now() < deadline) {
      pos = await h.position("r", Date.now()).catch((e: unknown) => e);
      if (!(pos instanceof Error)) break;
      await Bun.sleep(50);
    }
    expect(pos).toMatchObject({ seq: 0 });
    expect((pos as { epoch: string }).epoch).not.toBe(sent.epoch);
    const since = await h.since("r", { epoch: sent.epoch, seq: 1 }, Date.now());
    expect(since).toEqual({ ok: false, top: pos as { epoch: string; seq: number } });
    const next = await h.append("r", chat("r", "after"), Date.now());
    expect(next).toMatchObject({ seq: 1, epoch: (pos as { epoch: string }).epoch });
  });
});
