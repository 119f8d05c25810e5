// GET /metrics against a real server and real sockets: frames of several types, rate-limited
// frames, refused frames, auth failures (WebSocket and REST), a backpressure close, then a scrape
// parsed whole by a strict line parser (test/metrics-parse.ts) whose values must have moved by
// exactly what the clients did. And the Grafana dashboard in deploy/ references only metrics the
// server exports.
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { VERSION } from "../src/metrics/metrics.ts";
import { escapeLabel, formatValue, Registry } from "../src/metrics/registry.ts";
import { clusterTestsRun, startCluster, type TestCluster } from "./cluster-harness.ts";
import { Client, createUser, signToken, startServer, type TestServer } from "./helpers.ts";
import { type Family, parseExposition, value } from "./metrics-parse.ts";
import { TcpWs } from "./tcp-ws.ts";

setDefaultTimeout(60_000);

const CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8";

async function scrape(srv: Pick<TestServer, "port">): Promise<Map<string, Family>> {
  const res = await fetch(`http://127.0.0.1:${srv.port}/metrics`);
  expect(res.status).toBe(200);
  expect(res.headers.get("content-type")).toBe(CONTENT_TYPE);
  return parseExposition(await res.text());
}

/** Counts every frame a client receives (on top of its inbox). */
function counted(c: Client): { readonly n: number } {
  const box = { n: 0 };
  c.ws.addEventListener("message", () => {
    box.n++;
  });
  return box;
}

/** Every frame that arrives until none came for `quietMs`. */
async function drain(c: Client, quietMs = 250): Promise<string[]> {
  const out: string[] = [];
  for (;;) {
    try {
      out.push(await c.next(quietMs));
    } catch {
      return out;
    }
  }
}

const EXPECTED = [
  "kabar_frames_in_total",
  "kabar_frames_rejected_total",
  "kabar_frames_out_total",
  "kabar_rate_limited_total",
  "kabar_auth_failures_total",
  "kabar_closes_total",
  "kabar_handler_duration_seconds",
  "kabar_connections",
  "kabar_rooms",
  "kabar_event_loop_lag_seconds",
  "process_resident_memory_bytes",
  "kabar_info",
  "kabar_redis_up",
];

describe("GET /metrics", () => {
  let srv: TestServer;
  beforeAll(async () => {
    srv = await startServer({
      RATE_LIMIT_CAPACITY: "20",
      RATE_LIMIT_REFILL_PER_SECOND: "0.001",
      BOT_ENABLED: "false",
    });
  });
  afterAll(() => srv.stop());

  test("every family has HELP and TYPE; fresh counters at 0; gauges of this node", async () => {
    const m = await scrape(srv);
    expect([...m.keys()].sort()).toEqual([...EXPECTED].sort());
    // Every command type is there from the start, at 0 (no label appears on first use only).
    for (const type of ["create_room", "join_room", "leave_room", "message", "list_rooms"]) {
      expect(value(m, "kabar_frames_in_total", { type })).toBe(0);
      expect(
        value(
          m,
          "kabar_handler_duration_seconds",
          { type },
          "kabar_handler_duration_seconds_count",
        ),
      ).toBe(0);
    }
    expect(value(m, "kabar_info", { version: VERSION, node: srv.kabar.hub.nodeId })).toBe(1);
    expect(m.get("kabar_redis_up")?.samples).toEqual([]); // one node: no Redis, no sample
    expect(value(m, "process_resident_memory_bytes")).toBeGreaterThan(1 << 20);
    expect(value(m, "kabar_event_loop_lag_seconds")).toBeGreaterThanOrEqual(0);
    expect(m.get("kabar_handler_duration_seconds")?.type).toBe("histogram");
    expect(m.get("kabar_frames_out_total")?.type).toBe("counter");
    expect(m.get("kabar_connections")?.type).toBe("gauge");
  });

  test("frames in by type, refused, rate limited, frames out, latency: moved by what was sent", async () => {
    const a = await createUser(srv);
    const b = await createUser(srv);
    const before = await scrape(srv);
    const d = (after: Map<string, Family>, name: string, labels = {}, sample = name) =>
      (value(after, name, labels, sample) ?? 0) - (value(before, name, labels, sample) ?? 0);

    const ca = await Client.connect(srv, a.token);
    const cb = await Client.connect(srv, b.token, "text");
    const na = counted(ca);
    const nb = counted(cb);
    const welcomes = 2; // read by connect(), before counting started

    expect(JSON.parse(await ca.ask({ type: "create_room", room_name: "metrics" })).type).toBe(
      "room_created",
    );
    ca.send({ type: "join_room", room_name: "metrics" });
    await drain(ca);
    cb.send({ type: "join_room", room_name: "metrics" });
    await drain(cb);
    await drain(ca);
    for (let i = 0; i < 3; i++) ca.send({ type: "message", content: `hello ${i}` });
    cb.send({ type: "message", content: "from text" });
    await drain(ca);
    await drain(cb);
    // Refused before any handler: invalid JSON, unknown type, bad fields, a binary frame.
    ca.send("{nope");
    ca.send({ type: "nope" });
    ca.send({ type: "message" });
    ca.ws.send(new Uint8Array([1, 2, 3]));
    const refusals = await drain(ca);
    expect(refusals.map((f) => JSON.parse(f).code)).toEqual([
      "invalid_json",
      "unknown_type",
      "invalid_message",
      "invalid_message",
    ]);
    // b has used 2 of its 20 tokens: of 30 frames at once, 18 pass and 12 are rate limited.
    for (let i = 0; i < 30; i++) cb.send({ type: "list_rooms" });
    const replies = await drain(cb, 400);
    const limited = replies.filter((l) => l.includes("Rate limit exceeded")).length;
    expect(replies).toHaveLength(30);
    expect(limited).toBe(12);

    const after = await scrape(srv);
    const inOf = (type: string) => d(after, "kabar_frames_in_total", { type });
    expect(inOf("create_room")).toBe(1);
    expect(inOf("join_room")).toBe(2);
    expect(inOf("message")).toBe(4);
    expect(inOf("list_rooms")).toBe(18);
    expect(inOf("leave_room")).toBe(0);
    // An unknown type gets no label of its own.
    expect(value(after, "kabar_frames_in_total", { type: "nope" })).toBeUndefined();
    const rej = (code: string) => d(after, "kabar_frames_rejected_total", { code });
    expect([
      rej("invalid_json"),
      rej("unknown_type"),
      rej("invalid_message"),
      rej("binary"),
    ]).toEqual([1, 1, 1, 1]);
    expect(d(after, "kabar_rate_limited_total")).toBe(12);
    // Every frame the two clients received was counted, and nothing else was sent.
    expect(d(after, "kabar_frames_out_total")).toBe(welcomes + na.n + nb.n);
    // One latency observation per accepted frame.
    const h = "kabar_handler_duration_seconds";
    for (const type of ["create_room", "join_room", "message", "list_rooms"]) {
      expect(d(after, h, { type }, `${h}_count`)).toBe(inOf(type));
      expect(d(after, h, { type }, `${h}_sum`)).toBeGreaterThan(0);
    }
    expect(value(after, "kabar_connections")).toBe(2);
    expect(value(after, "kabar_rooms")).toBe(1);

    ca.close();
    cb.close();
    await ca.waitClose();
    await cb.waitClose();
    for (let i = 0; i < 50 && srv.kabar.hub.connections > 0; i++) await Bun.sleep(20);
    const closed = await scrape(srv);
    expect(value(closed, "kabar_connections")).toBe(0);
    expect(value(closed, "kabar_rooms")).toBe(0);
    const normal = (m: Map<string, Family>) =>
      ["1000", "1005"].reduce((s, code) => s + (value(m, "kabar_closes_total", { code }) ?? 0), 0);
    expect(normal(closed) - normal(before)).toBe(2);
  });

  test("event-loop lag: a blocked loop shows in the next sample", async () => {
    await Bun.sleep(1100); // two quiet ticks
    expect(value(await scrape(srv), "kabar_event_loop_lag_seconds")).toBeLessThan(0.3);
    const until = performance.now() + 700;
    while (performance.now() < until) {} // the server runs in this process: its loop is blocked
    await Bun.sleep(100);
    const lag = value(await scrape(srv), "kabar_event_loop_lag_seconds") ?? 0;
    expect(lag).toBeGreaterThan(0.15);
    expect(lag).toBeLessThan(1.5);
  });

  test("auth failures by cause: WebSocket upgrades, REST bearer tokens, logins", async () => {
    const u = await createUser(srv);
    const before = await scrape(srv);
    const d = (after: Map<string, Family>, cause: string) =>
      (value(after, "kabar_auth_failures_total", { cause }) ?? 0) -
      (value(before, "kabar_auth_failures_total", { cause }) ?? 0);
    const exp = Math.floor(Date.now() / 1000) + 600;
    const refused = async (query: string) => {
      const c = await Client.open(`${srv.ws}${query}`);
      expect((await c.waitClose()).code).toBe(1008);
    };
    await refused(
      `?token=${signToken({ sub: u.id, exp }, "another-secret-that-is-long-enough-000")}`,
    );
    await refused("");
    await refused(`?token=${signToken({ sub: u.id, exp: exp - 1200 })}`);
    await refused("?token=not.a.token");
    const me = (headers: Record<string, string>) => fetch(`${srv.api}/users/me`, { headers });
    expect((await me({ authorization: "Bearer junk" })).status).toBe(401);
    expect((await me({})).status).toBe(401);
    const login = await fetch(`${srv.api}/login/access-token`, {
      method: "POST",
      body: new URLSearchParams({ username: u.email, password: "wrong-password" }),
    });
    expect(login.status).toBe(400);

    const after = await scrape(srv);
    expect(d(after, "bad_signature")).toBe(1);
    expect(d(after, "missing_token")).toBe(2);
    expect(d(after, "expired")).toBe(1);
    expect(d(after, "malformed_token")).toBe(2);
    expect(d(after, "wrong_password")).toBe(1);
    const auth = after.get("kabar_auth_failures_total")?.samples ?? [];
    const total = auth.reduce((s, x) => s + x.value, 0);
    const totalBefore = (before.get("kabar_auth_failures_total")?.samples ?? []).reduce(
      (s, x) => s + x.value,
      0,
    );
    expect(total - totalBefore).toBe(7);
    const closes = (m: Map<string, Family>) =>
      value(m, "kabar_closes_total", { code: "1008" }) ?? 0;
    expect(closes(after) - closes(before)).toBe(4);
  });
});

test('a socket closed for backpressure counts in kabar_closes_total{code="1006"}', async () => {
  const srv = await startServer({
    WS_BACKPRESSURE_LIMIT_BYTES: "65536",
    RATE_LIMIT_CAPACITY: "100000",
    RATE_LIMIT_REFILL_PER_SECOND: "10000",
    BOT_ENABLED: "false",
  });
  try {
    const fast = await createUser(srv);
    const slow = await createUser(srv);
    const f = await Client.connect(srv, fast.token);
    expect(JSON.parse(await f.ask({ type: "create_room", room_name: "flood" })).type).toBe(
      "room_created",
    );
    f.send({ type: "join_room", room_name: "flood" });
    await f.take(2);
    const s = await TcpWs.connect("127.0.0.1", srv.port, `/api/v1/ws?token=${slow.token}`);
    s.send(JSON.stringify({ type: "join_room", room_name: "flood" }));
    await s.waitFrames(3);
    await drain(f);
    const before = await scrape(srv);
    s.pauseReading();
    // At most 4000 messages of ~9 KB, 20 at a time (their echoes read): bounded by bytes.
    const content = "x".repeat(9000);
    let sent = 0;
    while (sent < 4000 && srv.kabar.hub.isOnline(slow.id)) {
      for (let i = 0; i < 20; i++) f.send({ type: "message", content });
      sent += 20;
      await f.take(20, 5000);
    }
    for (let i = 0; i < 150 && srv.kabar.hub.isOnline(slow.id); i++) await Bun.sleep(20);
    expect(srv.kabar.hub.isOnline(slow.id)).toBe(false);
    const after = await scrape(srv);
    const code = (m: Map<string, Family>, c: string) =>
      value(m, "kabar_closes_total", { code: c }) ?? 0;
    expect(code(after, "1006") - code(before, "1006")).toBe(1);
    expect(value(after, "kabar_connections")).toBe(1);
    expect(
      (value(after, "kabar_frames_in_total", { type: "message" }) ?? 0) -
        (value(before, "kabar_frames_in_total", { type: "message" }) ?? 0),
    ).toBe(sent);
    s.end();
    f.close();
  } finally {
    await srv.stop();
  }
});

describe.skipIf(!(await clusterTestsRun()))("cluster mode: each node its own metrics", () => {
  let cluster: TestCluster;
  beforeAll(async () => {
    cluster = await startCluster(2, { BOT_ENABLED: "false" });
  });
  afterAll(() => cluster.stop());

  test("redis up, node ids; a message sent on A counts in on A and out on B; Redis gone: 0", async () => {
    const [a, b] = cluster.nodes as [(typeof cluster.nodes)[0], (typeof cluster.nodes)[0]];
    const alice = await createUser(a);
    const bob = await createUser(b);
    const ca = await Client.connect(a, alice.token);
    const cb = await Client.connect(b, bob.token);
    expect(JSON.parse(await ca.ask({ type: "create_room", room_name: "cm" })).type).toBe(
      "room_created",
    );
    ca.send({ type: "join_room", room_name: "cm" });
    await drain(ca);
    cb.send({ type: "join_room", room_name: "cm" });
    await drain(cb);
    await drain(ca);
    const [a0, b0] = [await scrape(a), await scrape(b)];
    for (const [m, node] of [
      [a0, a],
      [b0, b],
    ] as const) {
      expect(value(m, "kabar_redis_up")).toBe(1);
      expect(value(m, "kabar_info", { version: VERSION, node: node.id })).toBe(1);
      expect(value(m, "kabar_connections")).toBe(1);
      expect(value(m, "kabar_rooms")).toBe(1);
    }
    ca.send({ type: "message", content: "across" });
    expect(JSON.parse(await cb.next(3000))).toMatchObject({ type: "message", content: "across" });
    await drain(ca);
    const [a1, b1] = [await scrape(a), await scrape(b)];
    const msgIn = (m: Map<string, Family>) =>
      value(m, "kabar_frames_in_total", { type: "message" }) ?? 0;
    const out = (m: Map<string, Family>) => value(m, "kabar_frames_out_total") ?? 0;
    expect([msgIn(a1) - msgIn(a0), msgIn(b1) - msgIn(b0)]).toEqual([1, 0]);
    expect([out(a1) - out(a0), out(b1) - out(b0)]).toEqual([1, 1]); // the echo; bob's copy
    await cluster.redis.kill();
    let up: number | undefined = 1;
    for (let i = 0; i < 100 && up !== 0; i++) {
      await Bun.sleep(50);
      up = value(await scrape(a), "kabar_redis_up");
    }
    expect(up).toBe(0);
    await cluster.redis.restart();
    ca.close();
    cb.close();
  });
});

describe("deploy/grafana-dashboard.json", () => {
  const dashboard = JSON.parse(
    readFileSync(join(import.meta.dir, "..", "deploy", "grafana-dashboard.json"), "utf8"),
  ) as { panels: { title: string; targets?: { expr: string }[] }[] };
  const exprs = dashboard.panels.flatMap((p) => (p.targets ?? []).map((t) => t.expr));

  /** Metric names in a PromQL expression: identifiers outside braces and by (...) lists. */
  const metricsIn = (expr: string) =>
    expr
      .replace(/\{[^}]*\}/g, "")
      .replace(/\b(by|without)\s*\([^)]*\)/g, "")
      .replace(/\[[^\]]*\]/g, "")
      .match(/\b(kabar_|process_)[a-zA-Z0-9_:]*/g) ?? [];

  test("every query references only metrics a running server exports", async () => {
    const srv = await startServer({ BOT_ENABLED: "false" });
    try {
      const families = await scrape(srv);
      const exported = new Set<string>();
      for (const f of families.values()) {
        exported.add(f.name);
        if (f.type === "histogram")
          for (const s of ["_bucket", "_sum", "_count"]) exported.add(`${f.name}${s}`);
      }
      expect(exprs.length).toBeGreaterThanOrEqual(8);
      const used = new Set<string>();
      for (const expr of exprs) {
        const names = metricsIn(expr);
        expect(names.length).toBeGreaterThan(0);
        for (const n of names) {
          expect({ expr, metric: n, exported: exported.has(n) }).toEqual({
            expr,
            metric: n,
            exported: true,
          });
          used.add(n.replace(/_(bucket|sum|count)$/, ""));
        }
      }
      // The dashboard shows what the README promises.
      for (const n of [
        "kabar_connections",
        "kabar_frames_in_total",
        "kabar_frames_out_total",
        "kabar_rate_limited_total",
        "kabar_auth_failures_total",
        "kabar_handler_duration_seconds",
        "process_resident_memory_bytes",
        "kabar_event_loop_lag_seconds",
      ])
        expect(used.has(n)).toBe(true);
    } finally {
      await srv.stop();
    }
  });

  test("latency panels use histogram_quantile over the buckets", () => {
    const q = exprs.filter((e) => e.includes("histogram_quantile"));
    expect(
      q.some((e) => e.includes("0.5") && e.includes("kabar_handler_duration_seconds_bucket")),
    ).toBe(true);
    expect(
      q.some((e) => e.includes("0.99") && e.includes("kabar_handler_duration_seconds_bucket")),
    ).toBe(true);
  });
});

test("deploy/nginx.conf refuses /metrics (scraped per node, never through the proxy)", () => {
  const conf = readFileSync(join(import.meta.dir, "..", "deploy", "nginx.conf"), "utf8");
  expect(conf).toMatch(/\n\s*location = \/metrics \{\s*deny all;\s*\}/);
});

describe("registry", () => {
  test("label values are escaped; values spelled as the format wants", () => {
    expect(escapeLabel('a"b\\c\nd')).toBe('a\\"b\\\\c\\nd');
    expect(formatValue(Number.POSITIVE_INFINITY)).toBe("+Inf");
    expect(formatValue(Number.NaN)).toBe("NaN");
    const r = new Registry();
    r.labelledCounter("t_total", "x", "k")('we"ird\n').value += 2;
    r.labelledHistogram("t_seconds", "y", "k", [0.1, 1])("a").observe(0.5);
    const m = parseExposition(r.render());
    expect(value(m, "t_total", { k: 'we"ird\n' })).toBe(2);
    expect(value(m, "t_seconds", { k: "a", le: "0.1" }, "t_seconds_bucket")).toBe(0);
    expect(value(m, "t_seconds", { k: "a", le: "1" }, "t_seconds_bucket")).toBe(1);
    expect(value(m, "t_seconds", { k: "a", le: "+Inf" }, "t_seconds_bucket")).toBe(1);
    expect(() => r.counter("t_total", "again")).toThrow();
  });

  test("the strict parser refuses what breaks the format", () => {
    const bad = [
      "x 1\n",
      "# HELP x h\n# TYPE x counter\nx -1\n",
      "# HELP x h\n# TYPE x counter\ny 1\n",
      '# HELP h h\n# TYPE h histogram\nh_bucket{le="1"} 2\nh_bucket{le="+Inf"} 1\nh_sum 1\nh_count 1\n',
      '# HELP h h\n# TYPE h histogram\nh_bucket{le="+Inf"} 2\nh_sum 1\nh_count 1\n',
      "# HELP x h\n# TYPE x gauge\nx 1",
    ];
    for (const text of bad) expect(() => parseExposition(text)).toThrow();
  });
});
