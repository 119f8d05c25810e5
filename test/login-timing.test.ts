// No user enumeration by timing: a login with an unknown email costs one argon2id verification
// (against a dummy hash), as a wrong password for a real email does. Interleaved over real HTTP,
// each from its own loopback address (so the login throttle does not answer instead); the two
// medians must be within a factor of 2 of each other (robust on a loaded 2-core machine: without
// the dummy verification the ratio is about 100, an argon2id verification being ~0.1 s).
import { afterAll, beforeAll, expect, setDefaultTimeout, test } from "bun:test";
import { request } from "node:http";
import { createUser, startServer, type TestServer, type TestUser } from "./helpers.ts";

setDefaultTimeout(60_000);

let srv: TestServer;
let users: TestUser[];

beforeAll(async () => {
  srv = await startServer({ BOT_ENABLED: "false" });
  users = await Promise.all(Array.from({ length: 3 }, () => createUser(srv)));
});
afterAll(() => srv.stop());

/** POST /login/access-token from `from`; resolves with the status and the elapsed ms. */
function timedLogin(from: string, email: string, password: string): Promise<[number, number]> {
  const form = new URLSearchParams({ username: email, password }).toString();
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
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
        },
      },
      (res) => {
        res.resume();
        res.on("end", () => resolve([res.statusCode ?? 0, performance.now() - t0]));
      },
    );
    req.on("error", reject);
    req.end(form);
  });
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? (s[m] as number) : ((s[m - 1] as number) + (s[m] as number)) / 2;
};

test("unknown email and wrong password take the same time (medians within 2×)", async () => {
  const known: number[] = [];
  const unknown: number[] = [];
  const good: number[] = [];
  for (let i = 0; i < 12; i++) {
    const from = `127.0.60.${i + 1}`;
    // At most 4 failures per email: far from the throttle's 10.
    const user = users[i % users.length] as TestUser;
    const wrong = () => timedLogin(from, user.email, `wrong-password-${i}`);
    const nobody = () => timedLogin(from, `nobody-${i}-${Date.now()}@example.com`, `wrong-${i}-pw`);
    // Alternate which goes first, so neither side always runs on a warmer server.
    let a: [number, number];
    let b: [number, number];
    if (i % 2 === 0) {
      a = await wrong();
      b = await nobody();
    } else {
      b = await nobody();
      a = await wrong();
    }
    const [s1, t1] = a;
    const [s2, t2] = b;
    const [s3, t3] = await timedLogin(from, user.email, user.password);
    expect([s1, s2, s3]).toEqual([400, 400, 200]);
    known.push(t1);
    unknown.push(t2);
    good.push(t3);
  }
  const ratio = median(unknown) / median(known);
  console.log(
    `login medians: wrong password ${median(known).toFixed(1)} ms, unknown email ${median(unknown).toFixed(1)} ms (ratio ${ratio.toFixed(2)}), right password ${median(good).toFixed(1)} ms`,
  );
  expect(ratio).toBeGreaterThan(0.5);
  expect(ratio).toBeLessThan(2);
  // Both really ran argon2id (the default costs ~0.1 s here; far more than a lookup).
  expect(median(unknown)).toBeGreaterThan(10);
});
