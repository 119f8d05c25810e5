// The coalescer behind CLUSTER_COALESCE_MS (src/cluster/coalescer.ts), on a clock and timers of
// the test's own: what goes out at once, what waits, and that order never changes.
import { expect, test } from "bun:test";
import { Coalescer, type CoalescerClock } from "../src/cluster/coalescer.ts";

class FakeClock implements CoalescerClock {
  t = 0;
  timers: Array<{ at: number; run: () => void; id: number }> = [];
  private next = 1;
  now(): number {
    return this.t;
  }
  setTimeout(run: () => void, ms: number): unknown {
    const id = this.next++;
    this.timers.push({ at: this.t + ms, run, id });
    return id;
  }
  clearTimeout(timer: unknown): void {
    this.timers = this.timers.filter((x) => x.id !== timer);
  }
  /** Moves time on by `ms`, running the timers due. */
  advance(ms: number): void {
    this.t += ms;
    for (const due of this.timers.filter((x) => x.at <= this.t)) {
      this.clearTimeout(due.id);
      due.run();
    }
  }
}

const make = (holdMs: number) => {
  const clock = new FakeClock();
  const out: string[] = [];
  const c = new Coalescer<string>(holdMs, (s) => out.push(s), clock);
  return { clock, out, c };
};

test("sparse arrivals go out at once: no timer, no wait", () => {
  const { clock, out, c } = make(1);
  for (let k = 0; k < 20; k++) {
    c.add([`m${k}`]);
    expect(out.at(-1)).toBe(`m${k}`);
    clock.advance(5); // 5 ms apart: longer than the hold
  }
  expect(clock.timers.length).toBe(0);
  expect(c.holds).toBe(0);
});

test("dense arrivals: once the average gap is under the hold, the next waits and the rest join it", () => {
  const { clock, out, c } = make(1);
  let k = 0;
  // 0.1 ms apart: the average gap (starting at 100 ms) falls under 1 ms after a few dozen.
  while (c.holds === 0 && k < 200) {
    c.add([`m${k++}`]);
    clock.advance(0.1);
  }
  expect(c.holds).toBe(1);
  expect(k).toBeGreaterThan(10);
  const before = out.length;
  expect(before).toBe(k - 1); // the last one waits
  for (let j = 0; j < 5; j++) {
    c.add([`m${k++}`, `m${k++}`]); // a batch of two in one arrival
    clock.advance(0.1);
  }
  expect(out.length).toBe(before); // still waiting: the hold (1 ms) is not over
  expect(c.size).toBe(11);
  clock.advance(0.6); // the hold's timer: all eleven go out together
  expect(c.size).toBe(0);
  expect(out).toEqual(Array.from({ length: k }, (_, j) => `m${j}`));
  expect(c.held).toBe(11);
});

test("a quiet spell after dense traffic: the average gap grows again and arrivals go out at once", () => {
  const { clock, out, c } = make(1);
  for (let k = 0; k < 100; k++) {
    c.add([`d${k}`]);
    clock.advance(0.05);
  }
  clock.advance(5);
  expect(c.size).toBe(0);
  const holds = c.holds;
  // Gaps of 20 ms: after a few, every arrival goes out the moment it comes.
  for (let k = 0; k < 10; k++) {
    clock.advance(20);
    c.add([`q${k}`]);
  }
  const last = out.at(-1);
  expect(last).toBe("q9");
  expect(c.holds - holds).toBeLessThanOrEqual(1);
});

test("hold 0 turns it off: everything goes out as it arrives, however dense", () => {
  const { clock, out, c } = make(0);
  for (let k = 0; k < 100; k++) {
    c.add([`m${k}`]);
    expect(out.length).toBe(k + 1);
  }
  expect(clock.timers.length).toBe(0);
});

test("an arrival while held items go out (a handler that adds) queues behind them", () => {
  const clock = new FakeClock();
  const out: string[] = [];
  let c: Coalescer<string> | null = null;
  c = new Coalescer<string>(
    1,
    (s) => {
      out.push(s);
      if (s === "first") c?.add(["from-handler"]);
    },
    clock,
  );
  for (let k = 0; k < 60; k++) {
    c.add([`m${k}`]);
    clock.advance(0.01);
  }
  c.add(["first", "second"]);
  clock.advance(2);
  const i = out.indexOf("first");
  expect(out.slice(i)).toEqual(["first", "second", "from-handler"]);
});

test("clear drops what is held and its timer", () => {
  const { clock, out, c } = make(1);
  for (let k = 0; k < 60; k++) {
    c.add([`m${k}`]);
    clock.advance(0.01);
  }
  expect(c.size).toBeGreaterThan(0);
  const sent = out.length;
  c.clear();
  clock.advance(5);
  expect(out.length).toBe(sent);
  expect(clock.timers.length).toBe(0);
});
