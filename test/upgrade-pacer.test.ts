// WS_UPGRADES_PER_TURN: at most that many upgrades run in one turn of the event loop; the rest
// wait, in arrival order, for later turns. On its own (turns are setImmediate ticks) and on a real
// server: a frame of a socket already connected is handled while a burst of upgrades that arrived
// before it is still waiting — and, with pacing off, only after the whole burst (so the test can
// tell the two apart).
import { afterEach, describe, expect, test } from "bun:test";
import { Type } from "@sinclair/typebox";
import { loadConfig } from "../src/config.ts";
import { events } from "../src/protocol.ts";
import { UpgradePacer } from "../src/rest/upgrade-pacer.ts";
import { handler } from "../src/ws/handler.ts";
import { defaultHandlers } from "../src/ws/handlers.ts";
import { Client, createUser, startServer, type TestServer } from "./helpers.ts";
import { RawConn, upgradeRequest } from "./tcp-raw.ts";

const turn = () => new Promise<void>((resolve) => setImmediate(resolve));

describe("UpgradePacer", () => {
  test("default 8 per turn; 0 turns it off; bad values are refused", () => {
    expect(loadConfig({}).wsUpgradesPerTurn).toBe(8);
    expect(loadConfig({ WS_UPGRADES_PER_TURN: "0" }).wsUpgradesPerTurn).toBe(0);
    expect(() => loadConfig({ WS_UPGRADES_PER_TURN: "-1" })).toThrow(/^WS_UPGRADES_PER_TURN:/);
    expect(() => loadConfig({ WS_UPGRADES_PER_TURN: "many" })).toThrow(/^WS_UPGRADES_PER_TURN:/);
    expect(new UpgradePacer(0).enabled).toBe(false);
    expect(new UpgradePacer(8).enabled).toBe(true);
  });

  test("perTurn go at once, the rest one turn's worth per turn, in arrival order", async () => {
    const pacer = new UpgradePacer(3);
    const ran: number[] = [];
    const turns: number[][] = [];
    for (let i = 0; i < 10; i++) {
      const go = pacer.admit();
      if (go === true) ran.push(i);
      else void go.then(() => ran.push(i));
    }
    expect(ran).toEqual([0, 1, 2]);
    expect(pacer.queued).toBe(7);
    for (let t = 0; t < 5; t++) {
      await turn();
      turns.push([...ran]);
    }
    expect(turns[0]).toEqual([0, 1, 2, 3, 4, 5]);
    expect(turns[1]).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8]);
    expect(turns[2]).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    expect(pacer.queued).toBe(0);
  });

  test("an upgrade arriving while others wait queues behind them; a quiet turn starts afresh", async () => {
    const pacer = new UpgradePacer(2);
    const ran: string[] = [];
    const add = (name: string) => {
      const go = pacer.admit();
      if (go === true) ran.push(name);
      else void go.then(() => ran.push(name));
    };
    add("a");
    add("b");
    add("c");
    await turn(); // c runs; the turn's budget has one left
    add("d"); // nobody waits and the budget has room: at once
    add("e"); // budget spent: waits
    expect(ran).toEqual(["a", "b", "c", "d"]);
    await turn();
    expect(ran).toEqual(["a", "b", "c", "d", "e"]);
    await turn();
    await turn();
    // Quiet: a new burst gets the whole budget at once.
    add("f");
    add("g");
    expect(ran).toEqual(["a", "b", "c", "d", "e", "f", "g"]);
  });
});

/** A server whose `probe` command answers how many sockets it holds when the frame is handled. */
async function probeServer(perTurn: string): Promise<TestServer> {
  const handlers = defaultHandlers();
  handlers.set(
    "probe",
    handler(Type.Object({}), (conn) => {
      conn.send(events.bot(`connections ${conn.hub.connections}`));
    }),
  );
  return startServer(
    {
      WS_UPGRADES_PER_TURN: perTurn,
      CONNECT_RATE_PER_IP: "0",
      BOT_ENABLED: "false",
      MAX_CONNECTIONS_PER_USER: "1000",
    },
    { handlers },
  );
}

/**
 * `burst` TCP connections are opened first; then all their upgrade requests and the probe frame
 * of a socket already connected are written in one go, so that the server reads them in one poll.
 * Answers how many sockets the server held when it handled the probe, beyond the probing one.
 */
async function probeDuringBurst(srv: TestServer, burst: number): Promise<number> {
  const user = await createUser(srv);
  const prober = await Client.connect(srv, user.token);
  const raws = await Promise.all(Array.from({ length: burst }, () => RawConn.open(srv.port)));
  const request = upgradeRequest(`/api/v1/ws?token=${user.token}`);
  for (const r of raws) r.write(request);
  prober.send({ type: "probe" });
  const text = JSON.parse(await prober.next(10_000)).text as string;
  // Every socket of the burst still gets its welcome.
  for (const r of raws) expect((await r.head(10_000)).status).toBe(101);
  for (const r of raws) r.destroy();
  prober.close();
  return Number(text.split(" ").pop()) - 1;
}

describe("a burst of upgrades on a real server", () => {
  let srv: TestServer | undefined;
  afterEach(async () => {
    await srv?.stop();
    srv = undefined;
  });

  test("WS_UPGRADES_PER_TURN=2: the probe is handled while most of 200 upgrades still wait", async () => {
    srv = await probeServer("2");
    const held = await probeDuringBurst(srv, 200);
    expect(held).toBeLessThan(100);
  });

  test("WS_UPGRADES_PER_TURN=0 (off): the probe waits behind the whole burst", async () => {
    srv = await probeServer("0");
    const held = await probeDuringBurst(srv, 200);
    expect(held).toBeGreaterThanOrEqual(150);
  });
});
