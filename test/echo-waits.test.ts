// EchoWaits (src/ws/echo-waits.ts): one queue and one timer for every message waiting for its
// echo from Redis; real timers with short waits.
import { describe, expect, test } from "bun:test";
import type { Rendered } from "../src/protocol.ts";
import { EchoWaits, type Sender } from "../src/ws/echo-waits.ts";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A sender that records what `echoedUpTo` it was told. */
function sender(): Sender & { calls: [number, string | undefined][] } {
  const calls: [number, string | undefined][] = [];
  return { calls, echoedUpTo: (k: number, bot?: Rendered) => void calls.push([k, bot?.json]) };
}

const bot: Rendered = { json: '{"type":"bot"}', text: "bot" };

describe("EchoWaits", () => {
  test("an echo releases its sender at once, with the bot's reply, and only once", async () => {
    const w = new EchoWaits(30);
    const s = sender();
    const wait = w.start("a", s, 1, bot);
    w.answered("a", wait);
    w.echoed("a");
    w.echoed("a");
    expect(s.calls).toEqual([[1, '{"type":"bot"}']]);
    expect(w.size).toBe(0);
    await sleep(60);
    expect(s.calls).toEqual([[1, '{"type":"bot"}']]);
  });

  test("an echo that comes before Redis's answer: no deadline is queued", () => {
    const w = new EchoWaits(30);
    const s = sender();
    const wait = w.start("a", s, 1, undefined);
    w.echoed("a");
    w.answered("a", wait);
    expect(w.queued).toBe(0);
    expect(s.calls).toEqual([[1, undefined]]);
  });

  test("no echo: released waitMs after the answer, without the bot's reply, in order", async () => {
    const w = new EchoWaits(40);
    const s = sender();
    const first = w.start("a", s, 1, bot);
    const second = w.start("b", s, 2, bot);
    w.answered("a", first);
    await sleep(20);
    w.answered("b", second);
    await sleep(30);
    // a is due (40 ms after its answer), b not yet
    expect(s.calls).toEqual([[1, undefined]]);
    await sleep(40);
    expect(s.calls).toEqual([
      [1, undefined],
      [2, undefined],
    ]);
    expect(w.size).toBe(0);
    expect(w.queued).toBe(0);
  });

  test("a failure releases at once; its deadline never fires again", async () => {
    const w = new EchoWaits(20);
    const s = sender();
    const wait = w.start("a", s, 1, bot);
    w.failed("a", wait);
    w.answered("a", wait);
    expect(s.calls).toEqual([[1, undefined]]);
    await sleep(40);
    expect(s.calls).toEqual([[1, undefined]]);
  });

  test("thousands waiting: one timer serves them, the queue empties", async () => {
    const w = new EchoWaits(20);
    const s = sender();
    for (let i = 1; i <= 5_000; i++) {
      const wait = w.start(`m${i}`, s, i, undefined);
      w.answered(`m${i}`, wait);
      if (i % 2 === 0) w.echoed(`m${i}`);
    }
    expect(w.size).toBe(2_500);
    await sleep(80);
    expect(w.size).toBe(0);
    expect(w.queued).toBe(0);
    expect(s.calls.length).toBe(5_000);
    expect(s.calls.filter(([k]) => k % 2 === 1).map(([k]) => k)).toEqual(
      Array.from({ length: 2_500 }, (_, i) => 2 * i + 1),
    );
  });
});
