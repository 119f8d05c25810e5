// Tokens and passwords never reach a log: a realistic session at LOG_LEVEL=debug — signup, good
// and bad logins, the login throttle, sockets with ?token= and with the Authorization header,
// refused tokens (forged, expired, of a deleted user), password changes, REST errors with the
// password in a bad body, the connect-rate limit refusing a URL with a token, a handler failure
// — then every log line is searched for every token and password used, and for SECRET_KEY.
// (test/log-audit.ts does the same over the logs of the whole test run.)
import { afterAll, beforeAll, expect, setDefaultTimeout, test } from "bun:test";
import { Type } from "@sinclair/typebox";
import { handler } from "../src/ws/handler.ts";
import { defaultHandlers } from "../src/ws/handlers.ts";
import {
  adminUser,
  Client,
  login,
  SECRET,
  signToken,
  startServer,
  type TestServer,
  type TestUser,
} from "./helpers.ts";

setDefaultTimeout(60_000);

let srv: TestServer;
let admin: TestUser;
const secrets: string[] = [];
const remember = (...xs: string[]) => {
  secrets.push(...xs);
};

beforeAll(async () => {
  const handlers = defaultHandlers();
  handlers.set(
    "boom",
    handler(Type.Object({}), () => {
      throw new Error("kaboom");
    }),
  );
  srv = await startServer(
    { LOG_LEVEL: "debug", CONNECT_RATE_PER_IP: "1", USERS_OPEN_REGISTRATION: "true" },
    { handlers },
  );
  admin = await adminUser(srv);
  remember(admin.token, admin.password, SECRET);
});
afterAll(() => srv.stop());

const json = { "content-type": "application/json" };

test("a realistic session at debug level logs no token and no password", async () => {
  const email = `leaky-${Date.now()}@example.com`;
  const password = "Sup3r-Secret-Pa55word!";
  remember(password);
  const signup = await fetch(`${srv.api}/users/signup`, {
    method: "POST",
    headers: json,
    body: JSON.stringify({ email, password, full_name: "Leaky" }),
  });
  expect(signup.status).toBe(200);
  const { id } = (await signup.json()) as { id: string };
  // A bad body that carries a password: 422, not echoed, not logged.
  const bad = "Another-Secret-99!";
  remember(bad);
  const r422 = await fetch(`${srv.api}/users/signup`, {
    method: "POST",
    headers: json,
    body: JSON.stringify({ email: "not-an-email", password: bad }),
  });
  expect(r422.status).toBe(422);
  expect(await r422.text()).not.toContain(bad);
  // A good login from the admin, then a password change and a login with the new password.
  const newPassword = "Brand-New-Secret-77";
  remember(newPassword);
  const patch = await fetch(`${srv.api}/users/${id}`, {
    method: "PATCH",
    headers: { ...json, authorization: `Bearer ${admin.token}` },
    body: JSON.stringify({ password: newPassword }),
  });
  expect(patch.status).toBe(200);
  const created = await fetch(`${srv.api}/users/`, {
    method: "POST",
    headers: { ...json, authorization: `Bearer ${admin.token}` },
    body: JSON.stringify({ email: `second-${email}`, password: "Second-Secret-55" }),
  });
  remember("Second-Secret-55");
  expect(created.status).toBe(200);
  const res = await login(srv, `second-${email}`, "Second-Secret-55");
  const tok = ((await res.json()) as { access_token: string }).access_token;
  remember(tok);
  // Sockets: query and header; a handler that throws; a bad frame.
  const c1 = await Client.connect(srv, tok);
  const c2 = await Client.open(srv.ws, { headers: { authorization: `Bearer ${tok}` } });
  expect(JSON.parse(await c2.next()).type).toBe("welcome");
  c1.send({ type: "boom" });
  expect(JSON.parse(await c1.next()).code).toBe("unavailable");
  c1.send(`{"type":"message","content":"${tok}"`);
  expect(JSON.parse(await c1.next()).code).toBe("invalid_json");
  c1.close();
  c2.close();
  // Refused tokens: forged, expired, of a user that is then deleted; REST 401s with them.
  const forged = signToken(
    { sub: admin.id, exp: Math.floor(Date.now() / 1000) + 60 },
    "f".repeat(40),
  );
  const expired = signToken({ sub: admin.id, exp: Math.floor(Date.now() / 1000) - 60 });
  remember(forged, expired);
  for (const t of [forged, expired]) {
    const c = await Client.open(`${srv.ws}?token=${t}`);
    expect((await c.waitClose()).code).toBe(1008);
    expect(
      (await fetch(`${srv.api}/users/me`, { headers: { authorization: `Bearer ${t}` } })).status,
    ).toBe(401);
  }
  // The connect-rate limit (1/s, burst 10) refuses upgrades whose URL carries the token.
  const statuses: number[] = [];
  for (let i = 0; i < 14; i++) {
    const c = await Client.open(`${srv.ws}?token=${tok}`);
    statuses.push(c.ws.readyState);
    c.close();
  }
  expect(statuses).toContain(WebSocket.CLOSED);
  expect(srv.logs.some((l) => l.includes('"connect rate limit"'))).toBe(true);

  // Wrong passwords until the throttle answers, for this email (from 127.0.0.1), last: it throttles the address too.
  for (let i = 0; i < 11; i++) {
    const wrong = `Wrong-Password-${i}-xyz`;
    remember(wrong);
    expect([400, 429]).toContain((await login(srv, email, wrong)).status);
  }
  expect((await login(srv, email, password)).status).toBe(429);
  // Every line, every secret, and the signature segment of every token.
  expect(srv.logs.length).toBeGreaterThan(30);
  expect(srv.logs.some((l) => l.includes('"level":"debug"'))).toBe(true);
  for (const secret of secrets) {
    const sig = secret.split(".")[2];
    for (const line of srv.logs) {
      expect(line.includes(secret)).toBe(false);
      if (sig && sig.length >= 16) expect(line.includes(sig)).toBe(false);
    }
  }
});
