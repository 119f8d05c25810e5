// CONNECT_RATE_PER_IP: the per-address token bucket (burst 10× the rate) on its own with a chosen
// clock, and against a real server: upgrades over the burst get HTTP 429 with Retry-After before
// any upgrade, from that address only, on both upgrade paths; tokens come back at the rate; 0
// turns the limit off. The bucket map stays bounded under a flood of distinct addresses. A 429 is
// held CONNECT_REFUSAL_DELAY_MS before it is sent (at most MAX_DELAYED at once).
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { loadConfig } from "../src/config.ts";
import { addressKey, ConnectLimit, DelayedRefusals } from "../src/rest/connect-limit.ts";
import {
  adminUser,
  Client,
  createUser,
  startServer,
  type TestServer,
  type TestUser,
} from "./helpers.ts";
import { RawConn, upgradeRequest } from "./tcp-raw.ts";

describe("ConnectLimit (chosen clock)", () => {
  test("default: 100 per second, so a burst of 1,000", () => {
    expect(loadConfig({}).connectRatePerIp).toBe(100);
    expect(loadConfig({ CONNECT_RATE_PER_IP: "0" }).connectRatePerIp).toBe(0);
    expect(() => loadConfig({ CONNECT_RATE_PER_IP: "-1" })).toThrow(/^CONNECT_RATE_PER_IP:/);
    expect(() => loadConfig({ CONNECT_RATE_PER_IP: "lots" })).toThrow(/^CONNECT_RATE_PER_IP:/);
    const limit = new ConnectLimit(100);
    let allowed = 0;
    for (let i = 0; i < 1500; i++) if (limit.take("10.0.0.1", 0) === 0) allowed++;
    expect(allowed).toBe(1000);
  });

  test("burst 10×, then the rate; Retry-After in whole seconds; other addresses unaffected", () => {
    const limit = new ConnectLimit(2);
    for (let i = 0; i < 20; i++) expect(limit.take("10.0.0.1", 1000)).toBe(0);
    expect(limit.take("10.0.0.1", 1000)).toBe(1); // 0.5 s to the next token, rounded up
    expect(limit.take("10.0.0.2", 1000)).toBe(0);
    expect(limit.take("10.0.0.1", 1499)).toBe(1);
    expect(limit.take("10.0.0.1", 1500)).toBe(0); // one token per 500 ms
    expect(limit.take("10.0.0.1", 1500)).toBe(1);
    const slow = new ConnectLimit(1);
    for (let i = 0; i < 10; i++) slow.take("a", 0);
    expect(slow.take("a", 0)).toBe(1);
    expect(new ConnectLimit(0).take("a", 0)).toBe(0);
    expect(new ConnectLimit(0).enabled).toBe(false);
  });

  test("refilled buckets are dropped at the next sweep", () => {
    const limit = new ConnectLimit(10);
    for (let i = 0; i < 50; i++) for (let k = 0; k < 100; k++) limit.take(`10.0.${i}.1`, 0);
    limit.take("10.9.9.9", 0); // one token taken: full again 100 ms later
    expect(limit.size).toBe(51);
    limit.sweep(5000); // 50 tokens back of the 100 the emptied buckets had
    expect(limit.size).toBe(50);
    limit.sweep(10_000); // 10 s at 10/s refills a burst of 100
    expect(limit.size).toBe(0);
    // Without calling sweep: an upgrade 10 s after the last sweep runs one first.
    for (let i = 0; i < 50; i++) limit.take(`10.1.${i}.1`, 20_000);
    expect(limit.size).toBe(50);
    limit.take("10.2.0.1", 25_000);
    expect(limit.size).toBe(51); // not yet: the last sweep was 5 s ago
    limit.take("10.2.0.2", 30_000);
    expect(limit.size).toBe(1); // swept: only the new address is left
  });

  test("a flood of distinct addresses keeps at most maxEntries buckets", () => {
    const limit = new ConnectLimit(100, 1000);
    for (let i = 0; i < 20_000; i++)
      limit.take(`10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`, i);
    expect(limit.size).toBeLessThanOrEqual(1000);
    const big = new ConnectLimit(100); // default cap: 100,000
    for (let i = 0; i < 150_000; i++) big.take(`a${i}`, 1);
    expect(big.size).toBe(100_000);
  });

  test("IPv6 counts per /64; IPv4-mapped IPv6 is the IPv4 address", () => {
    expect(addressKey("127.0.0.1")).toBe("127.0.0.1");
    expect(addressKey("::ffff:10.1.2.3")).toBe("10.1.2.3");
    expect(addressKey("2001:db8:1:2:aaaa::1")).toBe("2001:db8:1:2::/64");
    expect(addressKey("2001:DB8:1:2:bbbb:cccc:dddd:eeee")).toBe("2001:db8:1:2::/64");
    expect(addressKey("2001:db8::1")).toBe("2001:db8:0:0::/64");
    expect(addressKey("::1")).toBe("0:0:0:0::/64");
    const limit = new ConnectLimit(1);
    for (let i = 0; i < 10; i++) expect(limit.take(`2001:db8:1:2::${i + 1}`, 0)).toBe(0);
    expect(limit.take("2001:db8:1:2::ffff", 0)).toBe(1);
    expect(limit.take("2001:db8:1:3::1", 0)).toBe(0);
  });
});

/** Sends an upgrade for `path` from `from` and returns the HTTP status (101, 429, ...). */
async function upgradeStatus(
  srv: TestServer,
  path: string,
  from = "127.0.0.1",
  ms?: number,
): Promise<{ status: number; headers: Record<string, string>; body: string }> {
  const conn = await RawConn.open(srv.port, from);
  conn.write(upgradeRequest(path));
  const { status, headers } = await conn.head(ms);
  const length = Number(headers["content-length"] ?? 0);
  await conn.until((b) => b.length - b.indexOf("\r\n\r\n") - 4 >= length, 1000);
  const body = status === 101 ? "" : (await conn.head()).rest.toString();
  conn.destroy();
  return { status, headers, body };
}

describe("CONNECT_RATE_PER_IP=2 on a real server (burst 20)", () => {
  let srv: TestServer;
  let alice: TestUser;
  beforeAll(async () => {
    srv = await startServer({
      CONNECT_RATE_PER_IP: "2",
      CONNECT_REFUSAL_DELAY_MS: "0",
      BOT_ENABLED: "false",
    });
    alice = await createUser(srv);
  });
  afterAll(() => srv.stop());

  test("20 upgrades go through, the 21st gets 429 + Retry-After before the upgrade", async () => {
    const path = `/api/v1/ws?token=${alice.token}`;
    for (let i = 0; i < 10; i++)
      expect((await upgradeStatus(srv, path, "127.0.20.1")).status).toBe(101);
    // The trailing-slash path (an Elysia route) shares the same bucket.
    for (let i = 0; i < 10; i++)
      expect(
        (await upgradeStatus(srv, `/api/v1/ws/?token=${alice.token}`, "127.0.20.1")).status,
      ).toBe(101);
    for (const p of [path, `/api/v1/ws/?token=${alice.token}`]) {
      const over = await upgradeStatus(srv, p, "127.0.20.1");
      expect(over.status).toBe(429);
      expect(Number(over.headers["retry-after"])).toBeGreaterThanOrEqual(1);
      expect(JSON.parse(over.body)).toEqual({
        detail: "Too many new connections from this address",
      });
    }
    // Another address is not affected, and REST is not limited.
    expect((await upgradeStatus(srv, path, "127.0.20.2")).status).toBe(101);
    expect((await fetch(`${srv.api}/ws/health`)).status).toBe(200);
    // A token is back after 500 ms.
    await Bun.sleep(600);
    expect((await upgradeStatus(srv, path, "127.0.20.1")).status).toBe(101);
    expect((await upgradeStatus(srv, path, "127.0.20.1")).status).toBe(429);
    expect(
      srv.logs.some((l) => l.includes('"connect rate limit"') && l.includes("127.0.20.1")),
    ).toBe(true);
    // The log names the address, never the token of the refused request.
    for (const l of srv.logs) expect(l).not.toContain(alice.token);
  });

  test("an ordinary client is refused the same way (the WebSocket sees no open)", async () => {
    // 127.0.0.1 still has its burst: 20 sockets open, the 21st does not.
    const opened: Client[] = [];
    for (let i = 0; i < 20; i++) opened.push(await Client.connect(srv, alice.token));
    const refused = await Client.open(`${srv.ws}?token=${alice.token}`);
    expect(refused.ws.readyState).toBe(WebSocket.CLOSED);
    expect((await refused.closed).code).toBe(1006); // no close frame: the upgrade never happened
    for (const c of opened) c.close();
  });
});

describe("CONNECT_RATE_PER_IP=0 turns the limit off", () => {
  let srv: TestServer;
  beforeAll(async () => {
    srv = await startServer({ CONNECT_RATE_PER_IP: "0", BOT_ENABLED: "false" });
  });
  afterAll(() => srv.stop());

  test("100 quick upgrades from one address all go through", async () => {
    const statuses = await Promise.all(
      Array.from({ length: 100 }, () => upgradeStatus(srv, "/api/v1/ws", "127.0.21.1")),
    );
    expect(statuses.every((s) => s.status === 101)).toBe(true);
  });
});

describe("CONNECT_REFUSAL_DELAY_MS: a 429 is held before it is sent", () => {
  test("DelayedRefusals: held delayMs, at most `max` at once, 0 answers at once", async () => {
    const answer = () => new Response("no", { status: 429 });
    const r = new DelayedRefusals(80, 2);
    const t0 = performance.now();
    const held = [r.hold(answer), r.hold(answer)];
    expect(held.every((h) => h instanceof Promise)).toBe(true);
    expect(r.size).toBe(2);
    expect(r.hold(answer)).toBeInstanceOf(Response); // over the cap: at once
    const answered = await Promise.all(held);
    expect(performance.now() - t0).toBeGreaterThanOrEqual(75);
    expect(answered.map((a) => a.status)).toEqual([429, 429]);
    expect(r.size).toBe(0);
    expect(new DelayedRefusals(0).hold(answer)).toBeInstanceOf(Response);
    expect(loadConfig({}).connectRefusalDelayMs).toBe(250);
    expect(() => loadConfig({ CONNECT_REFUSAL_DELAY_MS: "-1" })).toThrow(
      /^CONNECT_REFUSAL_DELAY_MS:/,
    );
  });

  let srv: TestServer;
  let alice: TestUser;
  let admin: TestUser;
  beforeAll(async () => {
    srv = await startServer({
      CONNECT_RATE_PER_IP: "1",
      CONNECT_REFUSAL_DELAY_MS: "800",
      BOT_ENABLED: "false",
    });
    alice = await createUser(srv);
    admin = await adminUser(srv);
  });
  afterAll(() => srv.stop());

  test("over the burst, 20 at once are each answered 429 after the delay; others are not held", async () => {
    const path = `/api/v1/ws?token=${alice.token}`;
    for (let i = 0; i < 10; i++)
      expect((await upgradeStatus(srv, path, "127.0.22.1")).status).toBe(101);
    const t0 = performance.now();
    const pending = Promise.all(
      Array.from({ length: 20 }, async () => {
        const s = await upgradeStatus(srv, path, "127.0.22.1", 5000);
        return { status: s.status, ms: performance.now() - t0 };
      }),
    );
    // While they wait, the internals show them held (GET /ws/internals, superusers only).
    let held = 0;
    for (let i = 0; i < 100 && held < 20; i++) {
      const res = await fetch(`${srv.api}/ws/internals`, {
        headers: { authorization: `Bearer ${admin.token}` },
      });
      held = ((await res.json()) as { upgrades: { refusals_held: number } }).upgrades.refusals_held;
      if (held < 20) await Bun.sleep(5);
    }
    expect(held).toBe(20);
    const timed = await pending;
    expect(timed.every((t) => t.status === 429)).toBe(true);
    for (const t of timed) expect(t.ms).toBeGreaterThanOrEqual(780);
    // Held side by side, not one after another (20 × 800 ms would be 16 s).
    expect(Math.max(...timed.map((t) => t.ms))).toBeLessThan(4000);
    // Meanwhile another address upgrades at once, and REST answers.
    const t1 = performance.now();
    expect((await upgradeStatus(srv, path, "127.0.22.2")).status).toBe(101);
    expect(performance.now() - t1).toBeLessThan(300);
  });
});
