// A slow consumer against a real server: a client that stops reading must be closed once its
// unsent bytes pass WS_BACKPRESSURE_LIMIT_BYTES, not buffered forever, and must not hurt others.
// The slow client is test/tcp-ws.ts: a WebSocket over Bun.connect that joins the room, reads its
// answers, then pauses reading its socket, so the kernel buffers fill and the server's writes stall.
import { afterAll, beforeAll, expect, setDefaultTimeout, test } from "bun:test";
import { Client, createUser, startServer, type TestServer } from "./helpers.ts";
import { TcpWs } from "./tcp-ws.ts";

// Real servers, argon2 logins and a flood of a few megabytes: generous per-test limits.
setDefaultTimeout(60_000);

let srv: TestServer;
beforeAll(async () => {
  srv = await startServer({
    WS_BACKPRESSURE_LIMIT_BYTES: "65536",
    RATE_LIMIT_CAPACITY: "100000",
    RATE_LIMIT_REFILL_PER_SECOND: "10000",
    BOT_ENABLED: "false",
  });
});
afterAll(() => srv.stop());

test("a client that stops reading is closed by the server; fast clients keep working", async () => {
  const slow = await createUser(srv);
  const fast = await createUser(srv);
  const watcher = await createUser(srv);
  const f = await Client.connect(srv, fast.token);
  const w = await Client.connect(srv, watcher.token, "text");
  expect(JSON.parse(await f.ask({ type: "create_room", room_name: "flood" })).type).toBe(
    "room_created",
  );
  f.send({ type: "join_room", room_name: "flood" });
  await f.take(2);
  w.send({ type: "join_room", room_name: "flood" });
  await w.take(2);

  const s = await TcpWs.connect("127.0.0.1", srv.port, `/api/v1/ws?token=${slow.token}`);
  try {
    // A working client up to here: welcome, then its join is answered.
    s.send(JSON.stringify({ type: "join_room", room_name: "flood" }));
    const [welcome, joined, update] = (await s.waitFrames(3)).map((x) => JSON.parse(x));
    expect(welcome).toMatchObject({ type: "welcome", user_id: slow.id });
    expect(joined).toMatchObject({ type: "room_joined", room: "flood", members: 3 });
    expect(update).toMatchObject({ type: "room_update", room: "flood" });
    s.pauseReading();
    expect(srv.kabar.hub.isOnline(slow.id)).toBe(true);
    const connectionsBefore = srv.kabar.hub.connections;
    expect(connectionsBefore).toBe(3);

    // Flood the room: at most 4000 messages of ~9 KB (~36 MB, far more than the kernel buffers
    // and the 64 KiB limit hold), in batches of 20 whose echoes the fast sender reads before it
    // sends more. The watcher reads every one. Bounded by bytes, not by time.
    const content = "x".repeat(9000);
    let sent = 0;
    while (sent < 4000 && srv.kabar.hub.isOnline(slow.id)) {
      for (let i = 0; i < 20; i++) f.send({ type: "message", content });
      sent += 20;
      const echoes = await f.take(20, 5000);
      expect(echoes.every((e) => e.startsWith('{"type":"message"'))).toBe(true);
      const seen = await w.take(20, 5000);
      expect(seen.every((l) => l.startsWith(`User ${fast.id} says: x`))).toBe(true);
    }
    // Closed by the server, well before the flood ran out.
    for (let i = 0; i < 150 && srv.kabar.hub.isOnline(slow.id); i++) await Bun.sleep(20);
    expect(srv.kabar.hub.isOnline(slow.id)).toBe(false);
    expect(sent).toBeLessThan(4000);
    expect(srv.kabar.hub.connections).toBe(connectionsBefore - 1);
    expect(srv.logs.some((l) => l.includes('"msg":"disconnect"') && l.includes(slow.id))).toBe(
      true,
    );
    // The slow client read nothing after pausing: it got none of the flood.
    expect(s.frames).toHaveLength(3);

    // The room lost the slow socket; the fast clients still work.
    expect((await srv.kabar.hub.registry.get("flood"))?.members).toBe(2);
    f.send({ type: "message", content: "after the flood" });
    expect(JSON.parse(await f.next())).toMatchObject({
      type: "message",
      content: "after the flood",
    });
    expect(await w.next()).toBe(`User ${fast.id} says: after the flood`);
    expect(f.ws.readyState).toBe(WebSocket.OPEN);
    expect(w.ws.readyState).toBe(WebSocket.OPEN);
  } finally {
    s.end();
    f.close();
    w.close();
  }
});
