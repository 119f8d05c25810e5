// Login throttling over real HTTP: 10 failures within 15 minutes per client address AND per
// email, each counted on its own, and the end of the window. The address is the socket's peer
// address (by default Kabar ignores X-Forwarded-For; FORWARDED_ALLOW_IPS is test/client-address.test.ts), so requests come from different loopback
// source addresses (127.x.y.z, bound with node:http's `localAddress`). The server's throttle
// gets a fake clock, so the end of a window is reached without waiting 15 minutes.
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { request } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createKabar } from "../src/app.ts";
import { loadConfig } from "../src/config.ts";
import { createLogger } from "../src/log.ts";
import { LoginThrottle } from "../src/rest/login-throttle.ts";
import {
  ADMIN_EMAIL,
  ADMIN_PASSWORD,
  createUser,
  SECRET,
  type TestServer,
  type TestUser,
} from "./helpers.ts";
import { auditLogs } from "./log-audit.ts";

// Every failed login costs one argon2id verification.
setDefaultTimeout(30_000);

/** The limits the README and the spec state, not read from the code under test. */
const MAX_FAILURES = 10;
const WINDOW_MS = 15 * 60 * 1000;

/** The throttle's clock (ms); a test moves it forward. */
let clock = Date.parse("2026-11-26T10:00:00Z");

/** startServer's server (helpers.ts), plus a LoginThrottle whose clock is `clock`. */
async function startThrottledServer(): Promise<TestServer> {
  const dir = mkdtempSync(join(tmpdir(), "kabar-throttle-"));
  const config = loadConfig({
    HOST: "127.0.0.1",
    PORT: "0",
    SECRET_KEY: SECRET,
    DATA_DIR: dir,
    FIRST_SUPERUSER: ADMIN_EMAIL,
    FIRST_SUPERUSER_PASSWORD: ADMIN_PASSWORD,
    BOT_ENABLED: "false",
    LOG_LEVEL: "debug",
  });
  const logs: string[] = [];
  auditLogs(logs);
  const kabar = await createKabar(config, {
    log: createLogger(config.logLevel, (line) => logs.push(line)),
    // The fixed limits (the defaults), only the clock is the test's.
    loginThrottle: new LoginThrottle({ now: () => clock }),
  });
  const port = kabar.listen().port as number;
  return {
    kabar,
    config,
    port,
    api: `http://127.0.0.1:${port}/api/v1`,
    ws: `ws://127.0.0.1:${port}/api/v1/ws`,
    logs,
    dir,
    async stop() {
      await kabar.stop(1000);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

interface Reply {
  status: number;
  retryAfter: number | undefined;
  body: Record<string, unknown>;
}

/** POST /login/access-token from the loopback address `from`, over a fresh connection. */
function loginFrom(
  from: string,
  email: string,
  password: string,
  headers: Record<string, string> = {},
): Promise<Reply> {
  const form = new URLSearchParams({ username: email, password }).toString();
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: "127.0.0.1",
        port: srv.port,
        path: "/api/v1/login/access-token",
        method: "POST",
        localAddress: from,
        agent: false,
        headers: {
          "content-type": "application/x-www-form-urlencoded",
          "content-length": String(Buffer.byteLength(form)),
          ...headers,
        },
      },
      (res) => {
        let text = "";
        res.setEncoding("utf8");
        res.on("data", (chunk: string) => {
          text += chunk;
        });
        res.on("end", () => {
          const retry = res.headers["retry-after"];
          resolve({
            status: res.statusCode ?? 0,
            retryAfter: typeof retry === "string" ? Number(retry) : undefined,
            body: JSON.parse(text) as Record<string, unknown>,
          });
        });
        res.on("error", reject);
      },
    );
    req.on("error", reject);
    req.end(form);
  });
}

const WRONG = "wrong-password-0";
const THROTTLED = "Too many failed login attempts. Try again later.";

async function expectFailed(reply: Promise<Reply>): Promise<void> {
  expect(await reply).toMatchObject({
    status: 400,
    body: { detail: "Incorrect email or password" },
  });
}

async function expectThrottled(reply: Promise<Reply>): Promise<number> {
  const r = await reply;
  expect(r).toMatchObject({ status: 429, body: { detail: THROTTLED } });
  expect(Object.keys(r.body)).toEqual(["detail"]);
  expect(r.retryAfter).toBeGreaterThan(0);
  expect(r.retryAfter).toBeLessThanOrEqual(WINDOW_MS / 1000);
  return r.retryAfter as number;
}

async function expectToken(reply: Promise<Reply>): Promise<void> {
  const r = await reply;
  expect({ status: r.status, detail: r.body.detail }).toEqual({ status: 200, detail: undefined });
  expect(r.body.token_type).toBe("bearer");
}

let srv: TestServer;
let seq = 0;
const unknownEmail = () => `nobody${++seq}@example.com`;

beforeAll(async () => {
  srv = await startThrottledServer();
});
afterAll(() => srv.stop());

describe("login throttling: 10 failures in 15 minutes", () => {
  let user: TestUser;
  let other: TestUser;
  beforeAll(async () => {
    [user, other] = await Promise.all([createUser(srv), createUser(srv)]);
  });

  test("per email: 10 failures from 10 addresses → 429 from an 11th, even with the right password", async () => {
    clock += 2 * WINDOW_MS;
    // Each of the 10 is a plain 400: the 10th, after 9 failures, is not throttled yet.
    for (let i = 1; i <= MAX_FAILURES; i++)
      await expectFailed(loginFrom(`127.0.1.${i}`, user.email, WRONG));
    await expectThrottled(loginFrom("127.0.1.11", user.email, user.password));
    // Any spelling of the email is the same key.
    await expectThrottled(loginFrom("127.0.1.12", user.email.toUpperCase(), user.password));
    // The addresses themselves have one failure each: another account logs in from them.
    for (const from of ["127.0.1.1", "127.0.1.10", "127.0.1.11"])
      await expectToken(loginFrom(from, other.email, other.password));
  });

  test("per address: 10 failures with 10 emails → 429 for any email from that address", async () => {
    clock += 2 * WINDOW_MS;
    for (let i = 0; i < MAX_FAILURES; i++)
      await expectFailed(loginFrom("127.0.3.1", unknownEmail(), WRONG));
    await expectThrottled(loginFrom("127.0.3.1", user.email, user.password));
    await expectThrottled(loginFrom("127.0.3.1", unknownEmail(), WRONG));
    // The emails have one failure each; the same account from another address is fine (and
    // this shows the server really sees different source addresses).
    await expectToken(loginFrom("127.0.3.2", user.email, user.password));
    await expectToken(loginFrom("127.0.0.1", user.email, user.password));
  });

  test("X-Forwarded-For is not trusted: varying it does not dodge the address limit", async () => {
    clock += 2 * WINDOW_MS;
    for (let i = 1; i <= MAX_FAILURES; i++)
      await expectFailed(
        loginFrom("127.0.5.1", unknownEmail(), WRONG, { "x-forwarded-for": `10.0.0.${i}` }),
      );
    await expectThrottled(
      loginFrom("127.0.5.1", user.email, user.password, { "x-forwarded-for": "10.0.0.99" }),
    );
  });

  test("the window ends: 15 minutes after the first failure both limits are lifted", async () => {
    clock += 2 * WINDOW_MS;
    const start = clock;
    // Address 127.0.6.1 and the email of `user`, each tripped without the other.
    for (let i = 0; i < MAX_FAILURES; i++)
      await expectFailed(loginFrom("127.0.6.1", unknownEmail(), WRONG));
    for (let i = 0; i < MAX_FAILURES; i++) {
      clock = start + i * 1000; // failures later in the window do not extend it
      await expectFailed(loginFrom(`127.0.7.${i + 1}`, user.email, WRONG));
    }
    // Retry-After counts down to the end of the window that began at `start`.
    expect(await expectThrottled(loginFrom("127.0.6.1", other.email, other.password))).toBe(
      WINDOW_MS / 1000 - 9,
    );
    expect(await expectThrottled(loginFrom("127.0.7.20", user.email, user.password))).toBe(
      WINDOW_MS / 1000 - 9,
    );

    clock = start + WINDOW_MS - 1000;
    expect(await expectThrottled(loginFrom("127.0.6.1", other.email, other.password))).toBe(1);
    expect(await expectThrottled(loginFrom("127.0.7.20", user.email, user.password))).toBe(1);

    clock = start + WINDOW_MS;
    await expectToken(loginFrom("127.0.6.1", other.email, other.password));
    await expectToken(loginFrom("127.0.7.20", user.email, user.password));
  });

  test("after the window a new one starts from zero", async () => {
    clock += 2 * WINDOW_MS;
    for (let i = 0; i < MAX_FAILURES; i++)
      await expectFailed(loginFrom("127.0.8.1", unknownEmail(), WRONG));
    await expectThrottled(loginFrom("127.0.8.1", unknownEmail(), WRONG));
    clock += WINDOW_MS;
    // 9 new failures do not trip it; the 10th does.
    for (let i = 1; i < MAX_FAILURES; i++)
      await expectFailed(loginFrom("127.0.8.1", unknownEmail(), WRONG));
    await expectToken(loginFrom("127.0.8.1", user.email, user.password));
    await expectFailed(loginFrom("127.0.8.1", unknownEmail(), WRONG));
    await expectThrottled(loginFrom("127.0.8.1", user.email, user.password));
  });

  test("a throttled attempt is logged without the password", () => {
    expect(srv.logs.some((l) => l.includes("login throttled"))).toBe(true);
    for (const line of srv.logs) {
      expect(line).not.toContain(WRONG);
      expect(line).not.toContain(user.password);
    }
  });
});
