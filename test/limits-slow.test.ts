// A slow consumer against a real server: a client that never reads must be closed once its
// unsent bytes pass WS_BACKPRESSURE_LIMIT_BYTES, not buffered forever, and must not hurt others.
// Bun's WebSocket client always reads, so the slow client is a python3 child doing the
// handshake by hand on a socket with a tiny receive buffer, then sleeping without reading.
import { afterAll, beforeAll, expect, setDefaultTimeout, test } from "bun:test";
import { Client, createUser, startServer, type TestServer } from "./helpers.ts";

// Real servers, argon2 logins and waits for timers: generous per-test limits.
setDefaultTimeout(20_000);

const SLOW_CLIENT = `
import base64, json, os, socket, struct, sys, time
host, port, token, room = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
s.connect((host, port))
key = base64.b64encode(os.urandom(16)).decode()
s.sendall((f"GET /api/v1/ws?token={token} HTTP/1.1\\r\\nHost: {host}:{port}\\r\\n"
           "Upgrade: websocket\\r\\nConnection: Upgrade\\r\\n"
           f"Sec-WebSocket-Key: {key}\\r\\nSec-WebSocket-Version: 13\\r\\n\\r\\n").encode())
head = b""
while b"\\r\\n\\r\\n" not in head:
    chunk = s.recv(1)
    if not chunk:
        print("eof", flush=True)
        sys.exit(1)
    head += chunk
print("status " + head.split(b"\\r\\n", 1)[0].decode(), flush=True)
payload = json.dumps({"type": "join_room", "room_name": room}).encode()
mask = os.urandom(4)
s.sendall(bytes([0x81, 0x80 | len(payload)]) + mask
          + bytes(b ^ mask[i % 4] for i, b in enumerate(payload)))
print("joined", flush=True)
time.sleep(float(sys.argv[5]))
`;

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

/** Reads the child's stdout line by line until a line starting with `prefix` (bounded). */
async function readUntil(
  reader: { read(): Promise<{ done: boolean; value?: Uint8Array }> },
  prefix: string,
  seen: string[],
  ms = 5000,
): Promise<string | undefined> {
  const deadline = Date.now() + ms;
  let buf = "";
  const decoder = new TextDecoder();
  while (Date.now() < deadline) {
    const hit = seen.find((l) => l.startsWith(prefix));
    if (hit !== undefined) return hit;
    const chunk = await Promise.race([
      reader.read(),
      Bun.sleep(Math.max(1, deadline - Date.now())).then(() => null),
    ]);
    if (chunk === null || chunk.done) break;
    buf += decoder.decode(chunk.value, { stream: true });
    const lines = buf.split("\n");
    buf = lines.pop() ?? "";
    seen.push(...lines);
  }
  return seen.find((l) => l.startsWith(prefix));
}

test("a client that never reads is closed by the server; fast clients keep working", async () => {
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

  const child = Bun.spawn(
    ["python3", "-c", SLOW_CLIENT, "127.0.0.1", String(srv.port), slow.token, "flood", "30"],
    { stdout: "pipe", stderr: "pipe" },
  );
  try {
    const reader = child.stdout.getReader();
    const lines: string[] = [];
    expect(await readUntil(reader, "status ", lines)).toBe(
      "status HTTP/1.1 101 Switching Protocols",
    );
    expect(await readUntil(reader, "joined", lines)).toBe("joined");
    reader.releaseLock();

    // The slow socket is connected and in the room.
    let members = 0;
    for (let i = 0; i < 100 && members !== 3; i++) {
      members = (await srv.kabar.hub.registry.get("flood"))?.members ?? 0;
      if (members !== 3) await Bun.sleep(20);
    }
    expect(members).toBe(3);
    expect(srv.kabar.hub.isOnline(slow.id)).toBe(true);
    const connectionsBefore = srv.kabar.hub.connections;
    expect(connectionsBefore).toBe(3);

    // Flood the room: at most 4000 messages of ~9 KB (~36 MB) or 15 s, in batches of 20 whose
    // echoes the fast sender reads before it sends more. The watcher reads every one.
    const content = "x".repeat(9000);
    const deadline = Date.now() + 15_000;
    let sent = 0;
    while (sent < 4000 && Date.now() < deadline && srv.kabar.hub.isOnline(slow.id)) {
      for (let i = 0; i < 20; i++) f.send({ type: "message", content });
      sent += 20;
      const echoes = await f.take(20, 5000);
      expect(echoes.every((e) => e.startsWith('{"type":"message"'))).toBe(true);
      const seen = await w.take(20, 5000);
      expect(seen.every((l) => l.startsWith(`User ${fast.id} says: x`))).toBe(true);
    }
    // Closed by the server, well before the flood ran out.
    let offline = false;
    for (let i = 0; i < 150 && !offline; i++) {
      offline = !srv.kabar.hub.isOnline(slow.id);
      if (!offline) await Bun.sleep(20);
    }
    expect(offline).toBe(true);
    expect(sent).toBeLessThan(4000);
    expect(srv.kabar.hub.connections).toBe(connectionsBefore - 1);
    expect(srv.logs.some((l) => l.includes('"msg":"disconnect"') && l.includes(slow.id))).toBe(
      true,
    );

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
    child.kill();
    await child.exited;
    f.close();
    w.close();
  }
}, 40_000);
