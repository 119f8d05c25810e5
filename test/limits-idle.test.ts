// Liveness: the server pings idle sockets and closes the ones that never answer, while a
// normal client (which answers pings by itself) stays connected however long it is silent.
import { afterAll, beforeAll, expect, setDefaultTimeout, test } from "bun:test";
import { RawSocket } from "../bench/raw-ws.ts";
import { Client, createUser, startServer, type TestServer } from "./helpers.ts";

setDefaultTimeout(30_000);

// Handshake by hand, then neither read nor write: pings pile up unanswered.
const MUTE_CLIENT = `
import base64, os, socket, sys, time
host, port, token = sys.argv[1], int(sys.argv[2]), sys.argv[3]
s = socket.create_connection((host, port))
key = base64.b64encode(os.urandom(16)).decode()
s.sendall((f"GET /api/v1/ws?token={token} HTTP/1.1\\r\\nHost: {host}:{port}\\r\\n"
           "Upgrade: websocket\\r\\nConnection: Upgrade\\r\\n"
           f"Sec-WebSocket-Key: {key}\\r\\nSec-WebSocket-Version: 13\\r\\n\\r\\n").encode())
print("sent", flush=True)
time.sleep(float(sys.argv[4]))
`;

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
  const child = Bun.spawn(
    ["python3", "-c", MUTE_CLIENT, "127.0.0.1", String(srv.port), mute.token, "25"],
    { stdout: "ignore", stderr: "ignore" },
  );
  try {
    // Bounded wait for the mute socket to be accepted.
    for (let i = 0; i < 50 && (await health()) < 3; i++) await Bun.sleep(100);
    expect(await health()).toBe(3);
    // Closed within a few idle periods (uWS pings after one period, closes after the next;
    // its timers tick every few seconds, so measured here: ~7 s for a 1 s timeout).
    let closedAfter = -1;
    const start = Date.now();
    for (let i = 0; i < 150; i++) {
      if ((await health()) === 2) {
        closedAfter = Date.now() - start;
        break;
      }
      await Bun.sleep(100);
    }
    expect(closedAfter).toBeGreaterThanOrEqual(0);
    expect(srv.kabar.hub.isOnline(mute.id)).toBe(false);
    // The normal client was just as silent, but its automatic pongs keep it open.
    expect(srv.kabar.hub.isOnline(quiet.id)).toBe(true);
    expect(JSON.parse(await normal.ask({ type: "list_rooms" })).type).toBe("rooms");
    expect(srv.kabar.hub.isOnline(bench.id)).toBe(true);
    expect(rawClosed).toBe(false);
  } finally {
    child.kill();
    normal.close();
    raw.close();
  }
});
