// The client's address behind a reverse proxy (FORWARDED_ALLOW_IPS): X-Forwarded-For counts only
// from a trusted peer, and then names the client for the login throttle and CONNECT_RATE_PER_IP;
// from anyone else it is ignored (it could be forged).
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import type { Server } from "bun";
import { ConfigError, loadConfig } from "../src/config.ts";
import { ClientAddress } from "../src/rest/client-address.ts";
import { createUser, SECRET, startServer, type TestServer, type TestUser } from "./helpers.ts";

const peer = (address: string) =>
  ({ requestIP: () => ({ address, family: "IPv4", port: 1 }) }) as unknown as Server<unknown>;
const req = (xff?: string) =>
  new Request("http://x/", { headers: xff === undefined ? {} : { "x-forwarded-for": xff } });

describe("ClientAddress", () => {
  test("nobody trusted: always the TCP peer, the header ignored", () => {
    const c = new ClientAddress([]);
    expect(c.of(req("203.0.113.9"), peer("10.0.0.1"))).toBe("10.0.0.1");
    expect(c.of(req(), peer("::ffff:10.0.0.2"))).toBe("10.0.0.2");
    expect(c.of(req(), null)).toBe("unknown");
  });

  test("a trusted proxy: the right-most address that is not a trusted proxy", () => {
    const c = new ClientAddress(["10.0.0.0/8", "192.168.1.1", "::1"]);
    expect(c.of(req("203.0.113.9"), peer("10.1.2.3"))).toBe("203.0.113.9");
    // A client's own (forged) entry on the left does not count: the proxy appended the real one.
    expect(c.of(req("1.1.1.1, 203.0.113.9"), peer("10.1.2.3"))).toBe("203.0.113.9");
    // Two proxies in a row.
    expect(c.of(req("203.0.113.9, 192.168.1.1"), peer("::1"))).toBe("203.0.113.9");
    // No header, or a garbled one: the proxy itself.
    expect(c.of(req(), peer("10.1.2.3"))).toBe("10.1.2.3");
    expect(c.of(req("<script>"), peer("10.1.2.3"))).toBe("10.1.2.3");
    // An untrusted peer's header is ignored.
    expect(c.of(req("203.0.113.9"), peer("172.16.0.1"))).toBe("172.16.0.1");
  });

  test("* trusts every peer", () => {
    expect(new ClientAddress(["*"]).of(req("203.0.113.9"), peer("172.16.0.1"))).toBe("203.0.113.9");
  });

  test("a bad entry stops the server at start with one line naming the setting", () => {
    const env = { SECRET_KEY: SECRET, DATA_DIR: "/tmp/kabar-unused" };
    for (const bad of ["nginx", "10.0.0.0/33", "300.1.1.1"]) {
      expect(() => loadConfig({ ...env, FORWARDED_ALLOW_IPS: bad })).toThrow(ConfigError);
      expect(() => loadConfig({ ...env, FORWARDED_ALLOW_IPS: bad })).toThrow(
        /^FORWARDED_ALLOW_IPS: /,
      );
    }
    expect(
      loadConfig({ ...env, FORWARDED_ALLOW_IPS: "127.0.0.1, 10.0.0.0/8" }).forwardedAllowIps,
    ).toEqual(["127.0.0.1", "10.0.0.0/8"]);
  });
});

/** Opens a socket with an X-Forwarded-For header; true when it opened (false: refused). */
async function opens(srv: TestServer, token: string, xff: string): Promise<boolean> {
  const ws = new WebSocket(`${srv.ws}?token=${token}`, {
    headers: { "x-forwarded-for": xff },
  } as unknown as string[]);
  const ok = await new Promise<boolean>((resolve) => {
    ws.onopen = () => resolve(true);
    ws.onerror = () => resolve(false);
    ws.onclose = () => resolve(false);
  });
  ws.close();
  return ok;
}

const failLogin = (srv: TestServer, email: string, xff: string) =>
  fetch(`${srv.api}/login/access-token`, {
    method: "POST",
    headers: { "x-forwarded-for": xff },
    body: new URLSearchParams({ username: email, password: "wrong-password-1" }),
  }).then((r) => r.status);

describe("behind a proxy on 127.0.0.1 (FORWARDED_ALLOW_IPS=127.0.0.1)", () => {
  let srv: TestServer;
  let alice: TestUser;
  beforeAll(async () => {
    srv = await startServer({ FORWARDED_ALLOW_IPS: "127.0.0.1", CONNECT_RATE_PER_IP: "1" });
    alice = await createUser(srv);
  });
  afterAll(() => srv.stop());

  test("CONNECT_RATE_PER_IP counts each forwarded client on its own", async () => {
    for (let i = 0; i < 10; i++) expect(await opens(srv, alice.token, "203.0.113.5")).toBe(true);
    expect(await opens(srv, alice.token, "203.0.113.5")).toBe(false);
    expect(await opens(srv, alice.token, "203.0.113.6")).toBe(true);
    expect(
      srv.logs.some((l) => l.includes('"connect rate limit"') && l.includes("203.0.113.5")),
    ).toBe(true);
  });

  test("the login throttle counts each forwarded client on its own", async () => {
    for (let i = 0; i < 10; i++)
      expect(await failLogin(srv, `nobody${i}@example.com`, "198.51.100.7")).toBe(400);
    expect(await failLogin(srv, "nobody-else@example.com", "198.51.100.7")).toBe(429);
    // Another client behind the same proxy can still log in.
    expect(await failLogin(srv, "nobody-else@example.com", "198.51.100.8")).toBe(400);
  });
});

describe("no trusted proxy (the default)", () => {
  let srv: TestServer;
  let alice: TestUser;
  beforeAll(async () => {
    srv = await startServer({ CONNECT_RATE_PER_IP: "1" });
    alice = await createUser(srv);
  });
  afterAll(() => srv.stop());

  test("a forged X-Forwarded-For does not get a client past the connection limit", async () => {
    for (let i = 0; i < 10; i++) expect(await opens(srv, alice.token, `203.0.113.${i}`)).toBe(true);
    expect(await opens(srv, alice.token, "203.0.113.99")).toBe(false);
  });
});
