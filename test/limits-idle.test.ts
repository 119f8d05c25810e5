// Liveness: the server pings idle sockets and closes the ones that never answer, while a
// normal client (which answers pings by itself) stays connected however long it is silent.
import { afterAll, beforeAll, expect, setDefaultTimeout, test } from "bun:test";
import { RawSocket } from "../bench/raw-ws.ts";
import { Client, createUser, startServer, type TestServer } from "./helpers.ts";
import { TcpWs } from "./tcp-ws.ts";

setDefaultTimeout(60_000);

let srv: TestServer;
beforeAll(async () => {
  srv = await startServer({ WS_IDLE_TIMEOUT_SECONDS: "1" });
});
afterAll(() => srv.stop());

const health = async () =>
  ((await (await fetch(`${srv.api}/ws/health`)).json()) as { active_connections: number })
    .active_connections;

test("a socket that never answers pings is closed; silent normal clients stay", async () => {
  const mute = await createUser(srv);
  const quiet = await createUser(srv);
  const bench = await createUser(srv);
  const normal = await Client.connect(srv, quiet.token);
  // The benchmark's own client (bench/raw-ws.ts) answers pings by hand; it must stay too.
  const raw = await RawSocket.connect(
    "127.0.0.1",
    srv.port,
    `/api/v1/ws?token=${bench.token}`,
    5000,
  );
  let rawClosed = false;
  raw.onclose = () => {
    rawClosed = true;
  };
  raw.onmessage = () => {};
  // Reads everything (so it is no slow reader) but never answers a ping and never sends.
  const m = await TcpWs.connect("127.0.0.1", srv.port, `/api/v1/ws?token=${mute.token}`, {
    answerPings: false,
  });
  try {
    expect(JSON.parse((await m.waitFrames(1))[0] as string)).toMatchObject({
      type: "welcome",
      user_id: mute.id,
    });
    expect(await health()).toBe(3);
    // Closed after a few idle periods (uWS pings after one period, closes after the next; its
    // timers tick every few seconds, ~7 s here for a 1 s timeout). Bounded wait, no speed check.
    await Promise.race([m.closed, Bun.sleep(40_000)]);
    expect(m.ended).toBe(true);
    // It was pinged before being closed, and closed by the server.
    expect(m.pings).toBeGreaterThanOrEqual(1);
    for (let i = 0; i < 100 && srv.kabar.hub.isOnline(mute.id); i++) await Bun.sleep(20);
    expect(srv.kabar.hub.isOnline(mute.id)).toBe(false);
    expect(await health()).toBe(2);
    // The normal client was just as silent, but its automatic pongs keep it open.
    expect(srv.kabar.hub.isOnline(quiet.id)).toBe(true);
    expect(JSON.parse(await normal.ask({ type: "list_rooms" })).type).toBe("rooms");
    expect(srv.kabar.hub.isOnline(bench.id)).toBe(true);
    expect(rawClosed).toBe(false);
  } finally {
    m.end();
    normal.close();
    raw.close();
  }
});
