// The command line as a user runs it: `bun src/main.ts ...` as a child process on a temp
// DATA_DIR (SQLite), on a fresh PostgreSQL database when one answers, and on a real
// pseudo-terminal for the password prompt (python3's pty module); the users it makes log in on a
// real server sharing the database.
import { afterAll, describe, expect, test } from "bun:test";
import { mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { Client, login, startServer, type TestServer } from "./helpers.ts";
import { freshDatabase, pgTestsRun } from "./postgres.ts";
import { redisAvailable, startRedis } from "./redis-server.ts";

const ROOT = resolve(import.meta.dir, "..");
const MAIN = join(ROOT, "src", "main.ts");
const PASSWORD = "cli-password-1234";
const VERSION = ((await Bun.file(join(ROOT, "package.json")).json()) as { version: string })
  .version;

const dirs: string[] = [];
const tempDir = () => {
  const d = mkdtempSync(join(tmpdir(), "kabar-cli-"));
  dirs.push(d);
  return d;
};
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** `bun src/main.ts ...args` with only `env` (and PATH) in its environment, stdin closed. */
async function kabar(args: string[], env: Record<string, string>): Promise<Run> {
  const child = Bun.spawn([process.execPath, MAIN, ...args], {
    cwd: ROOT,
    env: { PATH: process.env.PATH ?? "/usr/bin:/bin", ...env },
    stdin: "ignore",
    stdout: "pipe",
    stderr: "pipe",
  });
  const timer = setTimeout(() => child.kill("SIGKILL"), 20_000);
  const [stdout, stderr, code] = await Promise.all([
    new Response(child.stdout).text(),
    new Response(child.stderr).text(),
    child.exited,
  ]);
  clearTimeout(timer);
  return { code, stdout, stderr };
}

const lines = (text: string) => text.split("\n").filter((l) => l.trim() !== "");

/** Runs `args` on a pseudo-terminal, typing each answer once its prompt shows; the transcript. */
async function onTerminal(
  args: string[],
  env: Record<string, string>,
  dialogue: Array<[prompt: string, answer: string]>,
): Promise<{ transcript: string; code: number }> {
  const script = `
import os, pty, sys, select, time
steps = [tuple(s.split("\\x1f")) for s in os.environ.pop("DIALOGUE").split("\\x1e") if s]
pid, fd = pty.fork()
if pid == 0:
    os.execvp(sys.argv[1], sys.argv[1:])
out, pos, i, deadline = b"", 0, 0, time.time() + 20
while time.time() < deadline:
    r, _, _ = select.select([fd], [], [], 0.05)
    if r:
        try:
            data = os.read(fd, 4096)
        except OSError:
            break
        if not data:
            break
        out += data
    if i < len(steps) and steps[i][0].encode() in out[pos:]:
        time.sleep(0.05)
        os.write(fd, steps[i][1].encode() + b"\\r")
        pos, i = len(out), i + 1
_, status = os.waitpid(pid, 0)
sys.stdout.write(out.decode("utf-8", "replace"))
sys.exit(os.waitstatus_to_exitcode(status))
`;
  const child = Bun.spawn(["python3", "-c", script, ...args], {
    cwd: ROOT,
    env: {
      PATH: process.env.PATH ?? "/usr/bin:/bin",
      ...env,
      DIALOGUE: dialogue.map(([p, a]) => `${p}\x1f${a}`).join("\x1e"),
    },
    stdin: "ignore",
    stdout: "pipe",
    stderr: "pipe",
  });
  const [transcript, code] = await Promise.all([new Response(child.stdout).text(), child.exited]);
  return { transcript, code };
}

const sqliteEnv = (dir: string) => ({ DATA_DIR: dir });

describe("--version and --help", () => {
  test("--version prints package.json's version", async () => {
    const run = await kabar(["--version"], { DATA_DIR: tempDir() });
    expect(run).toEqual({ code: 0, stdout: `kabar ${VERSION}\n`, stderr: "" });
  });

  test("--help lists the commands and the settings", async () => {
    const run = await kabar(["--help"], { DATA_DIR: tempDir() });
    expect(run.code).toBe(0);
    for (const c of ["user create --email", "--superuser", "user deactivate", "user list"])
      expect(run.stdout).toContain(c);
    expect(run.stdout).toContain("KABAR_PASSWORD");
    expect(run.stdout).toMatch(/^ {2}DATABASE_URL +\[/m);
  });
});

describe("user commands on SQLite", () => {
  test("create, duplicate, list, deactivate; the server then refuses the login", async () => {
    const dir = tempDir();
    const env = { ...sqliteEnv(dir), KABAR_PASSWORD: PASSWORD };
    const made = await kabar(
      ["user", "create", "--email", "Ann@Example.com", "--full-name", "Ann Bee"],
      env,
    );
    expect(made.code).toBe(0);
    expect(made.stdout).toMatch(/^created user ann@example\.com \([0-9a-f-]{36}\)\n$/);
    expect(made.stderr).toBe("");
    const boss = await kabar(["user", "create", "--email=boss@example.com", "--superuser"], env);
    expect(boss.code).toBe(0);
    expect(boss.stdout).toStartWith("created superuser boss@example.com");

    const again = await kabar(["user", "create", "--email", "ann@example.com"], env);
    expect(again.code).toBe(1);
    expect(lines(again.stderr)).toEqual([
      "kabar: a user with the email ann@example.com already exists",
    ]);

    const listed = await kabar(["user", "list"], sqliteEnv(dir));
    expect(listed.code).toBe(0);
    const rows = lines(listed.stdout);
    expect(rows[0]).toMatch(/^ID +EMAIL +NAME +ACTIVE +SUPERUSER$/);
    expect(rows[1]).toMatch(/^[0-9a-f-]{36} {2}ann@example\.com +Ann Bee +yes +no$/);
    expect(rows[2]).toMatch(/^[0-9a-f-]{36} {2}boss@example\.com +yes +yes$/);
    expect(rows[3]).toBe("2 users");
    // Nothing else appeared in DATA_DIR: the user commands need no secret key.
    expect(readdirSync(dir).filter((f) => !f.startsWith("kabar.db"))).toEqual([]);
    for (const r of [made, boss, again, listed])
      expect(r.stdout + r.stderr).not.toContain(PASSWORD);

    // A server on the same database: both log in; the superuser is one.
    const srv = await startServer({ DATABASE_URL: `sqlite://${join(dir, "kabar.db")}` });
    try {
      expect((await login(srv, "ann@example.com", PASSWORD)).status).toBe(200);
      const res = await login(srv, "boss@example.com", PASSWORD);
      const tok = ((await res.json()) as { access_token: string }).access_token;
      const me = await fetch(`${srv.api}/users/me`, {
        headers: { authorization: `Bearer ${tok}` },
      });
      expect(await me.json()).toMatchObject({ email: "boss@example.com", is_superuser: true });

      const off = await kabar(["user", "deactivate", "--email", "ann@example.com"], sqliteEnv(dir));
      expect(off.code).toBe(0);
      expect(off.stdout).toMatch(/^deactivated ann@example\.com \([0-9a-f-]{36}\)\n$/);
      const refused = await login(srv, "ann@example.com", PASSWORD);
      expect(refused.status).toBe(400);
      expect(await refused.json()).toEqual({ detail: "Inactive user" });
    } finally {
      await srv.stop();
    }
    const twice = await kabar(["user", "deactivate", "--email", "ann@example.com"], sqliteEnv(dir));
    expect(twice).toMatchObject({ code: 0, stdout: "ann@example.com is already inactive\n" });
    const after = lines((await kabar(["user", "list"], sqliteEnv(dir))).stdout);
    expect(after[1]).toMatch(/ann@example\.com +Ann Bee +no +no$/);
  }, 60_000);

  test("unknown email: exit 1, one line", async () => {
    const run = await kabar(["user", "deactivate", "--email", "nobody@example.com"], {
      DATA_DIR: tempDir(),
    });
    expect(run.code).toBe(1);
    expect(lines(run.stderr)).toEqual(["kabar: no user with the email nobody@example.com"]);
    expect(run.stdout).toBe("");
  });

  test("bad usage: exit 2 with the problem and the usage; nothing created", async () => {
    const dir = tempDir();
    const env = { DATA_DIR: dir, KABAR_PASSWORD: PASSWORD };
    const cases: Array<[string[], string]> = [
      [["user"], "kabar: user needs a command"],
      [["user", "frob"], "kabar: unknown command user frob"],
      [["user", "create"], "kabar: --email is required"],
      [["user", "create", "--email"], "kabar: --email needs a value"],
      [
        ["user", "create", "--email", "not-an-email"],
        "kabar: --email must be a valid email address",
      ],
      [
        ["user", "create", "--email", "a@example.com", "--admin"],
        "kabar: user create: unknown option --admin",
      ],
      [["user", "list", "--email", "a@example.com"], "kabar: user list: unknown option --email"],
      [
        ["user", "create", "--email", "a@example.com", "--superuser=yes"],
        "kabar: --superuser takes no value",
      ],
    ];
    for (const [args, message] of cases) {
      const run = await kabar(args, env);
      expect(run.code, args.join(" ")).toBe(2);
      const err = lines(run.stderr);
      expect(err[0]).toBe(message);
      expect(err[1]).toBe("Usage:");
      expect(run.stdout).toBe("");
    }
    const short = await kabar(["user", "create", "--email", "a@example.com"], {
      DATA_DIR: dir,
      KABAR_PASSWORD: "short",
    });
    expect(short.code).toBe(2);
    expect(lines(short.stderr)).toEqual(["kabar: the password must be 8 to 128 characters"]);
    const long = await kabar(["user", "create", "--email", "a@example.com"], {
      DATA_DIR: dir,
      KABAR_PASSWORD: "x".repeat(129),
    });
    expect(long.code).toBe(2);
    // No KABAR_PASSWORD and stdin is not a terminal: refused, not hung.
    const none = await kabar(["user", "create", "--email", "a@example.com"], { DATA_DIR: dir });
    expect(none.code).toBe(2);
    expect(lines(none.stderr)).toEqual([
      "kabar: set KABAR_PASSWORD, or run on a terminal to be asked for the password",
    ]);
    expect(lines((await kabar(["user", "list"], { DATA_DIR: dir })).stdout)).toEqual([
      "ID  EMAIL  NAME  ACTIVE  SUPERUSER",
      "0 users",
    ]);
  }, 60_000);

  test("an invalid setting: exit 1 naming it, as the server does", async () => {
    const run = await kabar(["user", "list"], { DATA_DIR: tempDir(), DATABASE_URL: "mysql://x" });
    expect(run.code).toBe(1);
    expect(lines(run.stderr)).toEqual([
      "kabar: invalid setting DATABASE_URL: expected sqlite://path.db or postgres://host/db",
    ]);
  });
});

describe("the password prompt on a terminal", () => {
  test("the harness sees what a terminal echoes (control)", async () => {
    const { transcript } = await onTerminal(["sh", "-c", "printf 'Say: '; read x"], {}, [
      ["Say:", "visible-text"],
    ]);
    expect(transcript).toContain("visible-text");
  });

  test("asked twice without echo; the user logs in with it", async () => {
    const dir = tempDir();
    const { transcript, code } = await onTerminal(
      [process.execPath, MAIN, "user", "create", "--email", "tty@example.com"],
      sqliteEnv(dir),
      [
        ["Password:", PASSWORD],
        ["Repeat:", PASSWORD],
      ],
    );
    expect(code).toBe(0);
    expect(transcript).toContain("Password:");
    expect(transcript).toContain("Repeat:");
    expect(transcript).toContain("created user tty@example.com");
    expect(transcript).not.toContain(PASSWORD);
    const srv = await startServer({ DATABASE_URL: `sqlite://${join(dir, "kabar.db")}` });
    try {
      expect((await login(srv, "tty@example.com", PASSWORD)).status).toBe(200);
    } finally {
      await srv.stop();
    }
  }, 60_000);

  test("two different answers: exit 1, nothing created", async () => {
    const dir = tempDir();
    const { transcript, code } = await onTerminal(
      [process.execPath, MAIN, "user", "create", "--email", "tty@example.com"],
      sqliteEnv(dir),
      [
        ["Password:", PASSWORD],
        ["Repeat:", `${PASSWORD}-typo`],
      ],
    );
    expect(code).toBe(1);
    expect(transcript).toContain("kabar: the passwords do not match");
    expect(transcript).not.toContain(PASSWORD);
    expect(lines((await kabar(["user", "list"], sqliteEnv(dir))).stdout).at(-1)).toBe("0 users");
  }, 30_000);
});

const PG = await pgTestsRun();

describe.if(PG)("user commands on PostgreSQL", () => {
  test("create, list, deactivate on a fresh database; the server agrees", async () => {
    const db = await freshDatabase();
    let srv: TestServer | undefined;
    try {
      const env = { DATA_DIR: tempDir(), DATABASE_URL: db.url };
      const made = await kabar(["user", "create", "--email", "pg@example.com", "--superuser"], {
        ...env,
        KABAR_PASSWORD: PASSWORD,
      });
      expect(made.code).toBe(0);
      expect(made.stdout).toStartWith("created superuser pg@example.com");
      const dup = await kabar(["user", "create", "--email", "PG@example.com"], {
        ...env,
        KABAR_PASSWORD: PASSWORD,
      });
      expect(dup.code).toBe(1);
      const rows = lines((await kabar(["user", "list"], env)).stdout);
      expect(rows[1]).toMatch(/pg@example\.com +yes +yes$/);
      expect(rows.at(-1)).toBe("1 user");
      srv = await startServer({ DATABASE_URL: db.url });
      expect((await login(srv, "pg@example.com", PASSWORD)).status).toBe(200);
      expect((await kabar(["user", "deactivate", "--email", "pg@example.com"], env)).code).toBe(0);
      const refused = await login(srv, "pg@example.com", PASSWORD);
      expect(await refused.json()).toEqual({ detail: "Inactive user" });
    } finally {
      await srv?.stop();
      await db.drop();
    }
  }, 60_000);
});

describe.if(redisAvailable())("cluster mode (REDIS_URL)", () => {
  test("deactivate tells the running nodes: the user's sockets close, its token stops working", async () => {
    const redis = await startRedis();
    const dir = tempDir();
    const dbUrl = `sqlite://${join(dir, "kabar.db")}`;
    let srv: TestServer | undefined;
    try {
      const env = { DATA_DIR: dir, REDIS_URL: redis.url };
      expect(
        (
          await kabar(["user", "create", "--email", "live@example.com"], {
            ...env,
            KABAR_PASSWORD: PASSWORD,
          })
        ).code,
      ).toBe(0);
      srv = await startServer({ DATABASE_URL: dbUrl, REDIS_URL: redis.url });
      const res = await login(srv, "live@example.com", PASSWORD);
      const tok = ((await res.json()) as { access_token: string }).access_token;
      const socket = await Client.connect(srv, tok);
      const me = () =>
        fetch(`${srv?.api}/users/me`, { headers: { authorization: `Bearer ${tok}` } });
      expect((await me()).status).toBe(200);

      const off = await kabar(["user", "deactivate", "--email", "live@example.com"], env);
      expect(off.code).toBe(0);
      expect(off.stdout).toContain("told the cluster: sockets closed on 1 node");
      expect(await socket.waitClose(5000)).toEqual({ code: 1008, reason: "User deactivated" });
      expect((await me()).status).toBe(401);
    } finally {
      await srv?.stop();
      await redis.stop();
    }
  }, 60_000);
});
