// Rate limit against a real server: one token bucket per user, shared by all of the user's
// sockets; checked before anything else; refused frames cost nothing; tokens come back with time.
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { Client, createUser, startServer, type TestServer } from "./helpers.ts";

// Real servers, argon2 logins and waits for timers: generous per-test limits.
setDefaultTimeout(20_000);

type Event = Record<string, unknown>;

const limited = (n: number) => `[System] Rate limit exceeded. Try again in ${n}s.`;
const LIMITED = /^\[System\] Rate limit exceeded\. Try again in (\d+)s\.$/;

/**
 * The waits a `rate_limited` answer may name, by the spec's rule (whole seconds until one token
 * is back, rounded up, at least 1), without trusting the machine's speed. The bucket was full at
 * most `fullMs` ago and holds at most refill × that (it was emptied by exactly `capacity`
 * frames since); its last accepted frame was at least `takenMs` ago, so it holds at least
 * refill × that.
 */
function retryRange(refillPerSecond: number, takenMs: number, fullMs: number): [number, number] {
  const wait = (tokens: number) => Math.max(1, Math.ceil((1 - tokens) / refillPerSecond));
  const most = Math.min(1, (refillPerSecond * fullMs) / 1000);
  return [wait(most), wait((refillPerSecond * takenMs) / 1000)];
}

/** A refusal (JSON event or text line) whose wait lies in `range`. */
function expectLimited(frame: string, range: [number, number]): void {
  let text = frame;
  if (frame.startsWith("{")) {
    const ev = JSON.parse(frame) as Event;
    expect(ev).toEqual({ type: "error", code: "rate_limited", text: expect.any(String) });
    text = ev.text as string;
  }
  const n = Number(LIMITED.exec(text)?.[1]);
  expect(n).toBeGreaterThanOrEqual(range[0]);
  expect(n).toBeLessThanOrEqual(range[1]);
}

/** Sends `count` list_rooms frames at once and sorts the replies into accepted and refused. */
async function burst(c: Client, count: number): Promise<{ accepted: number; refused: Event[] }> {
  for (let i = 0; i < count; i++) c.send({ type: "list_rooms" });
  let accepted = 0;
  const refused: Event[] = [];
  for (const frame of await c.take(count, 5000)) {
    const ev = JSON.parse(frame) as Event;
    if (ev.type === "rooms") accepted++;
    else refused.push(ev);
  }
  return { accepted, refused };
}

describe("slow refill (capacity 5, 0.25 tokens/s)", () => {
  let srv: TestServer;
  beforeAll(async () => {
    srv = await startServer({
      RATE_LIMIT_CAPACITY: "5",
      RATE_LIMIT_REFILL_PER_SECOND: "0.25",
      BOT_ENABLED: "false",
    });
  });
  afterAll(() => srv.stop());

  test("two sockets of one user drain one bucket; another user is unaffected", async () => {
    const alice = await createUser(srv);
    const bob = await createUser(srv);
    const a1 = await Client.connect(srv, alice.token);
    const a2 = await Client.connect(srv, alice.token, "text");
    const b = await Client.connect(srv, bob.token);
    const full = performance.now(); // the bucket is full until the first frame below
    for (let i = 0; i < 3; i++) {
      a1.send({ type: "list_rooms" });
      expect((await a1.json()).type).toBe("rooms");
    }
    for (let i = 0; i < 2; i++)
      expect(await a2.ask({ type: "list_rooms" })).toBe("[System] No active rooms.");
    const taken = performance.now(); // the last token went before this

    // 5 frames over two sockets: the user's bucket is empty on both sockets. 4 s until a token
    // is back, less by the time that passed since the bucket was full (on a fast machine: 4).
    const since = () => retryRange(0.25, 0, performance.now() - full);
    expectLimited(await a2.ask({ type: "list_rooms" }), since());
    expectLimited(await a1.ask({ type: "list_rooms" }), since());
    expectLimited(await a1.ask({ type: "list_rooms" }), since());

    // The wait shrinks as the next token comes back (0.3+ of a token after 1.2+ s: at most 3).
    await Bun.sleep(1200);
    const sent = performance.now();
    const later = await a1.ask({ type: "list_rooms" });
    expectLimited(later, retryRange(0.25, sent - taken, performance.now() - full));
    const n = Number(LIMITED.exec(JSON.parse(later).text)?.[1]);
    expect(n).toBeLessThanOrEqual(3);

    // Bob has his own bucket.
    for (let i = 0; i < 5; i++) {
      b.send({ type: "list_rooms" });
      expect((await b.json()).type).toBe("rooms");
    }
    a1.close();
    a2.close();
    b.close();
  });

  test("rate limit is checked before JSON parsing and validation; the socket stays open", async () => {
    const carol = await createUser(srv);
    const c = await Client.connect(srv, carol.token);
    const full = performance.now();
    const { accepted, refused } = await burst(c, 5);
    expect(accepted).toBe(5);
    expect(refused).toEqual([]);

    const since = () => retryRange(0.25, 0, performance.now() - full);
    expectLimited(await c.ask("this is {not json"), since());
    expectLimited(await c.ask("[1,2,3]"), since());
    expectLimited(await c.ask({ type: "no_such_command" }), since());
    expectLimited(await c.ask({ type: "create_room", room_name: "bad name!" }), since());
    c.ws.send(new Uint8Array([1, 2, 3]));
    expectLimited(await c.next(), since());
    // One error per refused frame, nothing else.
    expect(await c.stray({ ping: true })).toEqual([]); // the bucket is empty: a ping, no token
    expect(c.ws.readyState).toBe(WebSocket.OPEN);
    c.close();
  });

  test("the bucket outlives the user's sockets: reconnecting does not refill it", async () => {
    const fay = await createUser(srv);
    const f1 = await Client.connect(srv, fay.token);
    const full = performance.now();
    expect((await burst(f1, 5)).accepted).toBe(5);
    f1.close();
    await f1.waitClose();
    for (let i = 0; i < 100 && srv.kabar.hub.isOnline(fay.id); i++) await Bun.sleep(20);
    expect(srv.kabar.hub.isOnline(fay.id)).toBe(false);
    const f2 = await Client.connect(srv, fay.token);
    expectLimited(
      await f2.ask({ type: "list_rooms" }),
      retryRange(0.25, 0, performance.now() - full),
    );
    f2.close();
  });
});

describe("fast refill (capacity 2, 1 token/s)", () => {
  let srv: TestServer;
  beforeAll(async () => {
    srv = await startServer({
      RATE_LIMIT_CAPACITY: "2",
      RATE_LIMIT_REFILL_PER_SECOND: "1",
      BOT_ENABLED: "false",
    });
  });
  afterAll(() => srv.stop());

  test("refused frames cost no token: one token back after ~1 s is usable", async () => {
    const dave = await createUser(srv);
    const d = await Client.connect(srv, dave.token);
    expect((await burst(d, 2)).accepted).toBe(2);
    // 10 refused frames: if each cost a token the bucket would sit at -10 for ~10 s.
    for (let i = 0; i < 10; i++) d.send({ type: "list_rooms" });
    const errors = (await d.take(10, 5000)).map((f) => JSON.parse(f) as Event);
    for (const e of errors) {
      expect(e.code).toBe("rate_limited");
      expect(e.text).toBe(limited(1));
    }
    // Wait until one token is back (1 s at 1/s), with margin.
    await Bun.sleep(1300);
    d.send({ type: "list_rooms" });
    expect((await d.json()).type).toBe("rooms");
    expect(d.ws.readyState).toBe(WebSocket.OPEN);
    d.close();
  });
});

describe("refill with time (capacity 3, 20 tokens/s)", () => {
  let srv: TestServer;
  beforeAll(async () => {
    srv = await startServer({
      RATE_LIMIT_CAPACITY: "3",
      RATE_LIMIT_REFILL_PER_SECOND: "20",
      BOT_ENABLED: "false",
    });
  });
  afterAll(() => srv.stop());

  test("tokens come back with time, up to the capacity", async () => {
    const erin = await createUser(srv);
    const e = await Client.connect(srv, erin.token);
    // At most 3 plus what 20/s refills while a burst is read (a few ms here: 3, or 4).
    const most = (ms: number) => 3 + Math.floor((20 * ms) / 1000);
    let t = performance.now();
    const first = await burst(e, 12);
    expect(first.accepted).toBeGreaterThanOrEqual(3);
    expect(first.accepted).toBeLessThanOrEqual(most(performance.now() - t));
    for (const r of first.refused)
      expect(r).toEqual({ type: "error", code: "rate_limited", text: limited(1) });

    await Bun.sleep(600); // 12 tokens' worth of refill, capped at 3
    t = performance.now();
    const second = await burst(e, 12);
    expect(second.accepted).toBeGreaterThanOrEqual(3);
    expect(second.accepted).toBeLessThanOrEqual(most(performance.now() - t));

    await Bun.sleep(600);
    e.send({ type: "list_rooms" });
    expect((await e.json()).type).toBe("rooms");
    e.close();
  });
});
