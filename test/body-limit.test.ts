// Request bodies over 1 MiB are refused with 413 before they are read (Bun's default would read
// 128 MB, and the login route would argon2-hash a password of that size). Bun answers that 413
// itself, with an empty body, before any route runs (so not `{"detail"}`). The server serves on.
import { afterAll, beforeAll, expect, test } from "bun:test";
import { MAX_BODY_BYTES } from "../src/app.ts";
import { startServer, type TestServer } from "./helpers.ts";

let srv: TestServer;
beforeAll(async () => {
  srv = await startServer({ BOT_ENABLED: "false" });
});
afterAll(() => srv.stop());

const form = (n: number) =>
  new URLSearchParams({ username: "a@example.com", password: "p".repeat(n) });

test("a body just under 1 MiB is read; one over gets 413 at once", async () => {
  expect(MAX_BODY_BYTES).toBe(1_048_576);
  const under = await fetch(`${srv.api}/login/access-token`, {
    method: "POST",
    body: form(1_000_000),
  });
  expect(under.status).toBe(400);
  for (const n of [MAX_BODY_BYTES, 30_000_000]) {
    const t0 = performance.now();
    const over = await fetch(`${srv.api}/login/access-token`, { method: "POST", body: form(n) });
    expect(over.status).toBe(413);
    expect(await over.text()).toBe("");
    expect(performance.now() - t0).toBeLessThan(3000);
  }
});

test("a chunked body over the limit (no declared length) gets Bun's 413", async () => {
  const chunk = new Uint8Array(256 * 1024).fill(0x61);
  let sent = 0;
  const body = new ReadableStream<Uint8Array>({
    pull(c) {
      if (sent++ < 12) c.enqueue(chunk);
      else c.close();
    },
  });
  const res = await fetch(`${srv.api}/users/signup`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body,
  }).catch(() => undefined);
  // Bun answers 413 (or resets the upload): either way the body is not read and nothing crashed.
  if (res) expect(res.status).toBe(413);
  expect((await fetch(`${srv.api}/ws/health`)).status).toBe(200);
});
