// verifyHs256 against @elysiajs/jwt (jose) as the oracle: the same accept/reject decision on
// valid, forged, expired, alg-confused and malformed tokens.
import { expect, test } from "bun:test";
import { createHmac } from "node:crypto";
import { jwt } from "@elysiajs/jwt";
import { verifyHs256 } from "../src/auth.ts";

const SECRET = "a-secret-for-the-token-tests-0123456789";
const KEY = new TextEncoder().encode(SECRET);
const oracle = jwt({ name: "jwt", secret: SECRET }).decorator.jwt;
const b64 = (v: unknown) => Buffer.from(JSON.stringify(v)).toString("base64url");
const now = () => Math.floor(Date.now() / 1000);
const sign = (header: Record<string, unknown>, payload: unknown, secret = SECRET) => {
  const body = `${b64(header)}.${b64(payload)}`;
  return `${body}.${createHmac("sha256", secret).update(body).digest("base64url")}`;
};
const sub = "6f1c2a44-0000-4000-8000-000000000001";

const cases: Array<[string, string, string | null]> = [
  ["valid", sign({ alg: "HS256", typ: "JWT" }, { sub, exp: now() + 60 }), null],
  [
    "other secret",
    sign({ alg: "HS256" }, { sub, exp: now() + 60 }, "x".repeat(40)),
    "bad signature",
  ],
  ["expired", sign({ alg: "HS256" }, { sub, exp: now() - 1 }), "token expired"],
  ["no exp", sign({ alg: "HS256" }, { sub }), "token has no exp"],
  ["string exp", sign({ alg: "HS256" }, { sub, exp: String(now() + 60) }), "token has no exp"],
  [
    "nbf in future",
    sign({ alg: "HS256" }, { sub, exp: now() + 60, nbf: now() + 30 }),
    "token not yet valid",
  ],
  ["alg none", `${b64({ alg: "none" })}.${b64({ sub, exp: now() + 60 })}.`, "unsupported alg none"],
  ["alg HS512 label", sign({ alg: "HS512" }, { sub, exp: now() + 60 }), "unsupported alg HS512"],
  [
    "crit header",
    sign({ alg: "HS256", crit: ["x"], x: 1 }, { sub, exp: now() + 60 }),
    "unsupported crit header",
  ],
  ["payload array", sign({ alg: "HS256" }, [1, 2]), "malformed token"],
  ["two parts", "abc.def", "malformed token"],
  ["four parts", "a.b.c.d", "malformed token"],
  ["garbage", "not a token", "malformed token"],
  ["bad base64 json", "%%%.%%%.%%%", "malformed token"],
];

for (const [name, token, cause] of cases) {
  test(`${name}: ${cause ?? "accepted"}`, async () => {
    const ours = verifyHs256(token, KEY, Date.now() / 1000);
    const theirs = await oracle.verify(token, { algorithms: ["HS256"], requiredClaims: ["exp"] });
    expect(ours.ok).toBe(cause === null);
    expect(theirs !== false).toBe(cause === null || cause === "token has no sub");
    if (!ours.ok) expect(ours.cause).toBe(cause as string);
  });
}

test("tampered payload with the original signature is refused", () => {
  const good = sign({ alg: "HS256" }, { sub, exp: now() + 60 });
  const [h, , s] = good.split(".");
  const forged = `${h}.${b64({ sub: "6f1c2a44-0000-4000-8000-000000000002", exp: now() + 60 })}.${s}`;
  expect(verifyHs256(forged, KEY, now())).toEqual({ ok: false, cause: "bad signature" });
});

test("tokens issued by @elysiajs/jwt verify", async () => {
  const token = await oracle.sign({ sub, exp: now() + 120 });
  const r = verifyHs256(token, KEY, now());
  expect(r).toEqual({ ok: true, sub, exp: expect.any(Number) });
});

test("an oversized token is refused before any work", () => {
  expect(verifyHs256("a".repeat(5000), KEY, now())).toEqual({
    ok: false,
    cause: "malformed token",
  });
});
