// The user commands of the binary: `kabar user create|deactivate|list`, on the database the
// server is configured with (DATABASE_URL, else the SQLite file in DATA_DIR). They read the same
// environment as the server and need nothing more (no SECRET_KEY in local mode: no token is made).
// Exit codes: 0 done, 1 refused or failed (email taken, unknown email, database unreachable),
// 2 bad usage (unknown command or option, invalid email or password, no password source).
import { Value } from "@sinclair/typebox/value";
import { connectRedis } from "./cluster/redis.ts";
import { RedisBroker } from "./cluster/redis-broker.ts";
import { type Config, ConfigError, loadConfig } from "./config.ts";
import { errorText } from "./log.ts";
import { Email } from "./rest/schemas.ts";
import { openUserStore } from "./users/open.ts";
import { hashPassword } from "./users/password.ts";
import { EmailTakenError, type User, type UserStore } from "./users/store.ts";

/** The command lines of --help. */
export const USAGE: readonly string[] = [
  "Usage:",
  "  kabar [--workers N|auto]      start the server (settings below)",
  "  kabar --help | --version",
  "  kabar user create --email EMAIL [--full-name NAME] [--superuser]",
  "      the password comes from KABAR_PASSWORD, else it is asked twice on the terminal",
  "  kabar user deactivate --email EMAIL",
  "  kabar user list",
  "",
  "The user commands work on the database the server is configured with (same settings).",
];

/** The environment variable a non-interactive `user create` takes the password from. */
export const PASSWORD_ENV = "KABAR_PASSWORD";

class UsageError extends Error {
  constructor(
    message: string,
    readonly showUsage = true,
  ) {
    super(message);
  }
}
class Refused extends Error {}

/** Where a command writes; tests and main pass the process's own streams. */
export interface Io {
  env: Record<string, string | undefined>;
  out(line: string): void;
  err(line: string): void;
}

const defaultIo: Io = {
  env: process.env,
  out: (line) => process.stdout.write(`${line}\n`),
  err: (line) => process.stderr.write(`${line}\n`),
};

interface Options {
  email?: string;
  fullName?: string;
  superuser: boolean;
}

const VALUE_OPTIONS = { "--email": "email", "--full-name": "fullName" } as const;
const ALLOWED: Record<string, ReadonlyArray<string>> = {
  create: ["--email", "--full-name", "--superuser"],
  deactivate: ["--email"],
  list: [],
};

function parseOptions(command: string, args: string[]): Options {
  const allowed = ALLOWED[command] ?? [];
  const options: Options = { superuser: false };
  for (let i = 0; i < args.length; i++) {
    const arg = args[i] as string;
    const eq = arg.indexOf("=");
    const name = eq > 0 ? arg.slice(0, eq) : arg;
    if (!allowed.includes(name)) throw new UsageError(`user ${command}: unknown option ${name}`);
    if (name === "--superuser") {
      if (eq > 0) throw new UsageError("--superuser takes no value");
      options.superuser = true;
      continue;
    }
    const value = eq > 0 ? arg.slice(eq + 1) : args[++i];
    if (value === undefined || value === "") throw new UsageError(`${name} needs a value`);
    options[VALUE_OPTIONS[name as keyof typeof VALUE_OPTIONS]] = value;
  }
  return options;
}

function requireEmail(options: Options): string {
  const email = options.email?.trim().toLowerCase();
  if (email === undefined) throw new UsageError("--email is required");
  if (!Value.Check(Email, email)) throw new UsageError("--email must be a valid email address");
  return email;
}

/** The same rule as the REST API (8 to 128 characters). */
function checkPassword(password: string): string {
  if (password.length < 8 || password.length > 128)
    throw new UsageError("the password must be 8 to 128 characters", false);
  return password;
}

/**
 * Reads lines from the terminal with echo off (raw mode: nothing typed is shown). Typed ahead
 * input stays buffered for the next prompt. Ctrl-C or Ctrl-D gives up.
 */
class HiddenPrompt {
  private buffer = "";
  private waiting: ((line: string | null) => void) | null = null;
  private readonly stdin = process.stdin;
  private readonly onData = (chunk: Buffer | string) => {
    for (const ch of chunk.toString()) {
      if (ch === "\u0003" || (ch === "\u0004" && this.buffer === "")) return this.finish(null);
      if (ch === "\r" || ch === "\n") {
        const line = this.buffer;
        this.buffer = "";
        this.finish(line);
        continue;
      }
      if (ch === "\u007f" || ch === "\b") this.buffer = this.buffer.slice(0, -1);
      else if (ch >= " ") this.buffer += ch;
    }
  };

  constructor() {
    this.stdin.setRawMode(true);
    this.stdin.on("data", this.onData);
    this.stdin.resume();
  }

  private finish(line: string | null): void {
    const waiting = this.waiting;
    this.waiting = null;
    process.stderr.write("\n");
    waiting?.(line);
  }

  ask(prompt: string): Promise<string | null> {
    process.stderr.write(prompt);
    return new Promise((resolve) => {
      this.waiting = resolve;
    });
  }

  close(): void {
    this.stdin.off("data", this.onData);
    this.stdin.setRawMode(false);
    this.stdin.pause();
  }
}

async function readPassword(io: Io): Promise<string> {
  const fromEnv = io.env[PASSWORD_ENV];
  if (fromEnv !== undefined && fromEnv !== "") return checkPassword(fromEnv);
  if (!process.stdin.isTTY)
    throw new UsageError(
      `set ${PASSWORD_ENV}, or run on a terminal to be asked for the password`,
      false,
    );
  const prompt = new HiddenPrompt();
  try {
    const first = await prompt.ask("Password: ");
    if (first === null) throw new Refused("cancelled");
    checkPassword(first);
    const again = await prompt.ask("Repeat: ");
    if (again === null) throw new Refused("cancelled");
    if (again !== first) throw new Refused("the passwords do not match");
    return first;
  } finally {
    prompt.close();
  }
}

/**
 * Cluster mode: tells the running nodes (through Redis) to forget their cached copy of the user
 * and to close the user's sockets, as PATCH /users/{id} does. Returns how many nodes had sockets
 * of the user, or undefined on one node (no Redis: a running server is not told).
 */
async function tellCluster(config: Config, user: User): Promise<number | undefined> {
  if (config.redisUrl === undefined) return undefined;
  const redis = await connectRedis(config.redisUrl);
  const nodeId = `cli-${crypto.randomUUID().slice(0, 8)}`;
  const broker = await RedisBroker.create(nodeId, redis);
  try {
    await broker.publishAll({ t: "user_changed", user: user.id });
    return await broker.publishUser(user.id, {
      t: "kick",
      user: user.id,
      reason: "User deactivated",
    });
  } finally {
    await broker.close();
    redis.close();
  }
}

const yesNo = (b: boolean) => (b ? "yes" : "no");

/** Rows as aligned columns, the header first. */
function table(header: string[], rows: string[][]): string[] {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? "").length)));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => c.padEnd(widths[i] ?? 0))
      .join("  ")
      .trimEnd();
  return [line(header), ...rows.map(line)];
}

async function create(users: UserStore, options: Options, io: Io): Promise<void> {
  const email = requireEmail(options);
  const fullName = options.fullName?.trim();
  if (fullName !== undefined && fullName.length > 255)
    throw new UsageError("--full-name must be at most 255 characters");
  if (await users.getByEmail(email))
    throw new Refused(`a user with the email ${email} already exists`);
  const password = await readPassword(io);
  try {
    const user = await users.create({
      email,
      hashed_password: await hashPassword(password),
      full_name: fullName || null,
      is_superuser: options.superuser,
    });
    io.out(`created ${user.is_superuser ? "superuser" : "user"} ${user.email} (${user.id})`);
  } catch (e) {
    if (e instanceof EmailTakenError)
      throw new Refused(`a user with the email ${email} already exists`);
    throw e;
  }
}

async function deactivate(
  config: Config,
  users: UserStore,
  options: Options,
  io: Io,
): Promise<void> {
  const email = requireEmail(options);
  const user = await users.getByEmail(email);
  if (!user) throw new Refused(`no user with the email ${email}`);
  if (!user.is_active) {
    io.out(`${email} is already inactive`);
    return;
  }
  const changed = await users.update(user.id, { is_active: false });
  if (!changed) throw new Refused(`no user with the email ${email}`);
  io.out(`deactivated ${email} (${user.id})`);
  const nodes = await tellCluster(config, changed).catch((e: unknown) => {
    io.err(`kabar: the cluster was not told (${errorText(e)}): its nodes notice at restart`);
    return null;
  });
  if (nodes !== undefined && nodes !== null)
    io.out(`told the cluster: sockets closed on ${nodes} node${nodes === 1 ? "" : "s"}`);
}

async function list(users: UserStore, io: Io): Promise<void> {
  const all: User[] = [];
  for (let skip = 0; ; skip += 1000) {
    const page = await users.list(skip, 1000);
    all.push(...page.data);
    if (page.data.length < 1000 || all.length >= page.count) break;
  }
  const rows = all.map((u) => [
    u.id,
    u.email,
    u.full_name ?? "",
    yesNo(u.is_active),
    yesNo(u.is_superuser),
  ]);
  for (const line of table(["ID", "EMAIL", "NAME", "ACTIVE", "SUPERUSER"], rows)) io.out(line);
  io.out(`${all.length} user${all.length === 1 ? "" : "s"}`);
}

/** `kabar user ...` (args after `user`); resolves with the exit code. */
export async function userCommand(args: string[], io: Io = defaultIo): Promise<number> {
  const [command, ...rest] = args;
  try {
    if (command === undefined || !(command in ALLOWED))
      throw new UsageError(
        command === undefined ? "user needs a command" : `unknown command user ${command}`,
      );
    const options = parseOptions(command, rest);
    if (command !== "list") requireEmail(options);
    let config: Config;
    try {
      config = loadConfig(io.env);
    } catch (e) {
      if (e instanceof ConfigError) throw new Refused(`invalid setting ${e.message}`);
      throw e;
    }
    const users = await openUserStore(config.databaseUrl);
    try {
      if (command === "create") await create(users, options, io);
      else if (command === "deactivate") await deactivate(config, users, options, io);
      else await list(users, io);
    } finally {
      await users.close();
    }
    return 0;
  } catch (e) {
    if (e instanceof UsageError) {
      io.err(`kabar: ${e.message}`);
      if (e.showUsage) for (const line of ["Usage:", ...USAGE.slice(3, 7)]) io.err(line);
      return 2;
    }
    io.err(`kabar: ${e instanceof Refused ? e.message : errorText(e)}`);
    return 1;
  }
}
