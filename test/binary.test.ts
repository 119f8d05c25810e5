// Smoke test of the compiled binary (dist/kabar): copied alone into an empty folder (no
// node_modules, no src), it serves the web pages, logs a user in, serves two sockets in one room
// and stops on SIGTERM.
import { afterAll, beforeAll, expect, test } from "bun:test";
import { copyFileSync, existsSync, mkdtempSync, readdirSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { Client, freePort } from "./helpers.ts";

const ROOT = resolve(import.meta.dir, "..");
const BINARY = join(ROOT, "dist", "kabar");
const ADMIN = "admin@example.com";
const ADMIN_PASSWORD = "binary-admin-password";

let dir = "";
let proc: ReturnType<typeof Bun.spawn> | undefined;

/** Newest modification time under `path` (a file or a folder tree). */
function newest(path: string): number {
  const st = statSync(path);
  if (!st.isDirectory()) return st.mtimeMs;
  return Math.max(0, ...readdirSync(path).map((name) => newest(join(path, name))));
}

/** Builds dist/kabar with package.json's own build script when it is missing or older than src. */
async function ensureBinary(): Promise<void> {
  const sources = Math.max(newest(join(ROOT, "src")), newest(join(ROOT, "package.json")));
  if (existsSync(BINARY) && statSync(BINARY).mtimeMs >= sources) return;
  const pkg = (await Bun.file(join(ROOT, "package.json")).json()) as {
    scripts: { build: string };
  };
  const [tool, ...args] = pkg.scripts.build.split(/\s+/);
  expect(tool).toBe("bun");
  const built = Bun.spawnSync([process.execPath, ...args], {
    cwd: ROOT,
    stdout: "pipe",
    stderr: "pipe",
  });
  if (built.exitCode !== 0) throw new Error(`build failed: ${built.stderr.toString()}`);
}

beforeAll(async () => {
  await ensureBinary();
  dir = mkdtempSync(join(tmpdir(), "kabar-bin-"));
}, 120_000);

afterAll(() => {
  if (proc && proc.exitCode === null) proc.kill("SIGKILL");
  if (dir) rmSync(dir, { recursive: true, force: true });
});

test("compiled binary: web pages, login, two sockets in one room, SIGTERM exits 0", async () => {
  // Only the binary goes into the fresh folder.
  const exe = join(dir, "kabar");
  copyFileSync(BINARY, exe);
  expect(readdirSync(dir)).toEqual(["kabar"]);
  expect(existsSync(join(dir, "node_modules"))).toBe(false);

  const port = await freePort();
  const child = Bun.spawn([exe], {
    cwd: dir,
    env: {
      PATH: "/usr/bin:/bin",
      HOST: "127.0.0.1",
      PORT: String(port),
      DATA_DIR: join(dir, "data"),
      FIRST_SUPERUSER: ADMIN,
      FIRST_SUPERUSER_PASSWORD: ADMIN_PASSWORD,
      BOT_ENABLED: "false",
    },
    stdin: "ignore",
    stdout: "pipe",
    stderr: "pipe",
  });
  proc = child;
  const stdout = new Response(child.stdout).text();
  const stderr = new Response(child.stderr).text();
  const api = `http://127.0.0.1:${port}/api/v1`;

  const deadline = Date.now() + 15_000;
  for (;;) {
    if (child.exitCode !== null)
      throw new Error(`binary exited ${child.exitCode}: ${await stderr}`);
    if (Date.now() > deadline) throw new Error("binary not ready in 15 s");
    const ok = await fetch(`${api}/ws/health`).then(
      (r) => r.status === 200,
      () => false,
    );
    if (ok) break;
    await Bun.sleep(50);
  }

  // The web pages are inside the binary: no src, no node_modules next to it.
  const page = await fetch(`http://127.0.0.1:${port}/`);
  expect(page.status).toBe(200);
  expect(page.headers.get("content-security-policy")).toContain("script-src 'self'");
  expect(await page.text()).toContain('<script type="module" src="/assets/chat.js"></script>');
  for (const name of ["chat.js", "admin.js"]) {
    const js = await fetch(`http://127.0.0.1:${port}/assets/${name}`);
    expect(js.status).toBe(200);
    expect((await js.text()).length).toBeGreaterThan(1000);
  }
  expect((await fetch(`http://127.0.0.1:${port}/admin`)).status).toBe(200);

  const res = await fetch(`${api}/login/access-token`, {
    method: "POST",
    body: new URLSearchParams({ username: ADMIN, password: ADMIN_PASSWORD }),
  });
  expect(res.status).toBe(200);
  const { access_token: tok } = (await res.json()) as { access_token: string };
  const me = (await (
    await fetch(`${api}/users/me`, { headers: { authorization: `Bearer ${tok}` } })
  ).json()) as { id: string };

  // The API documents are built in the binary too (the plugin survives the build's minifying).
  const openapi = (await (await fetch(`http://127.0.0.1:${port}/openapi/json`)).json()) as {
    paths: Record<string, unknown>;
  };
  expect(Object.keys(openapi.paths)).toContain("/api/v1/users/{id}");
  const asyncapi = (await (await fetch(`${api}/asyncapi.json`)).json()) as { asyncapi: string };
  expect(asyncapi.asyncapi).toBe("3.0.0");

  const ws = `ws://127.0.0.1:${port}/api/v1/ws?token=${tok}`;
  const json = await Client.open(`${ws}&format=json`);
  const text = await Client.open(`${ws}&format=text`);
  expect(await json.json()).toMatchObject({ type: "welcome", user_id: me.id });
  expect(await text.next()).toStartWith(`[System] Welcome, ${me.id}!`);

  // The json socket makes and joins a room; the text socket joins it too.
  expect(JSON.parse(await json.ask({ type: "create_room", room_name: "smoke" }))).toEqual({
    type: "room_created",
    room: "smoke",
    text: "[System] Room 'smoke' created successfully!",
  });
  json.send({ type: "join_room", room_name: "smoke" });
  expect(await json.json()).toMatchObject({ type: "room_joined", room: "smoke", members: 1 });
  expect(await json.json()).toMatchObject({ type: "room_update", room: "smoke" });
  text.send({ type: "join_room", room_name: "smoke" });
  expect(await text.take(2)).toEqual([
    "[System] Joined room 'smoke' successfully!",
    "ROOM_UPDATE:smoke",
  ]);
  expect(await json.stray()).toEqual([]);

  // A message from the text socket: echoed as text, delivered as JSON.
  expect(await text.ask({ type: "message", content: "  hello from text  " })).toBe(
    "You wrote: hello from text",
  );
  const delivered = await json.json();
  expect(delivered).toMatchObject({
    type: "message",
    room: "smoke",
    from: me.id,
    content: "hello from text",
  });
  expect(typeof delivered.id).toBe("string");
  expect(new Date(delivered.sent_at as string).toISOString()).toBe(delivered.sent_at as string);

  // A message from the json socket: echoed as JSON, delivered as text.
  json.send({ type: "message", content: "hello from json" });
  const echo = await json.json();
  expect(echo).toMatchObject({ type: "message", room: "smoke", content: "hello from json" });
  expect(echo.id).not.toBe(delivered.id);
  expect(await text.next()).toBe(`User ${me.id} says: hello from json`);

  // SIGTERM: both sockets see 1001 and the binary exits 0.
  child.kill("SIGTERM");
  const closes = await Promise.all([json.waitClose(5000), text.waitClose(5000)]);
  expect(closes.map((c) => c.code)).toEqual([1001, 1001]);
  const code = await Promise.race([child.exited, Bun.sleep(5000).then(() => "timeout")]);
  expect(code).toBe(0);
  expect(await stderr).toBe("");
  for (const line of (await stdout).split("\n").filter(Boolean)) JSON.parse(line);
  // The binary wrote its data where DATA_DIR said, and nothing else appeared next to it.
  expect(readdirSync(dir).sort()).toEqual(["data", "kabar"]);
  expect(readdirSync(join(dir, "data"))).toContain("secret_key");
}, 60_000);

test("compiled binary: --version, and the user commands on its DATA_DIR", async () => {
  const own = mkdtempSync(join(tmpdir(), "kabar-bin-cli-"));
  try {
    const exe = join(own, "kabar");
    copyFileSync(BINARY, exe);
    const run = (args: string[], env: Record<string, string> = {}) => {
      const r = Bun.spawnSync([exe, ...args], {
        cwd: own,
        env: { PATH: "/usr/bin:/bin", DATA_DIR: join(own, "data"), ...env },
        stdin: "ignore",
        stdout: "pipe",
        stderr: "pipe",
      });
      return { code: r.exitCode, stdout: r.stdout.toString(), stderr: r.stderr.toString() };
    };
    const pkg = (await Bun.file(join(ROOT, "package.json")).json()) as { version: string };
    expect(run(["--version"])).toEqual({ code: 0, stdout: `kabar ${pkg.version}\n`, stderr: "" });
    const made = run(["user", "create", "--email", "bin@example.com"], {
      KABAR_PASSWORD: "binary-user-password",
    });
    expect(made.code).toBe(0);
    expect(made.stdout).toStartWith("created user bin@example.com");
    const listed = run(["user", "list"]);
    expect(listed.code).toBe(0);
    expect(listed.stdout).toContain("bin@example.com");
    expect(listed.stdout).toEndWith("1 user\n");
  } finally {
    rmSync(own, { recursive: true, force: true });
  }
}, 60_000);
