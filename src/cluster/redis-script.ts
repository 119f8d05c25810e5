// Lua scripts on Redis: each multi-step change is one script (atomic, one round trip: EVALSHA,
// and EVAL once when Redis answers NOSCRIPT, e.g. after a restart). A command that fails because
// Redis is down, or gets no answer within the timeout, rejects with the caller's "unavailable"
// error; other failures (a bug in a script) pass through as they are.
import type { RedisClient } from "bun";

export class Script {
  readonly source: string;
  readonly sha: string;
  constructor(body: string, common = "") {
    this.source = common + body;
    this.sha = new Bun.CryptoHasher("sha1").update(this.source).digest("hex");
  }
}

/** Server replies that mean "not now" rather than a bug in a script. */
const TRANSIENT_REPLY = /^(LOADING|BUSY|MASTERDOWN|TRYAGAIN|READONLY|CLUSTERDOWN)\b/;

function codeOf(e: unknown): string | undefined {
  if (typeof e !== "object" || e === null || !("code" in e)) return undefined;
  return typeof e.code === "string" ? e.code : undefined;
}

const messageOf = (e: unknown): string => (e instanceof Error ? e.message : String(e));

const isNoScript = (e: unknown): boolean =>
  codeOf(e) === "ERR_REDIS_SERVER_ERROR" && messageOf(e).startsWith("NOSCRIPT");

/** True for errors that mean Redis is out of reach (or not ready), not a bug. */
export function isRedisDown(e: unknown): boolean {
  const code = codeOf(e);
  if (code === undefined || !code.startsWith("ERR_REDIS_")) return false;
  return code !== "ERR_REDIS_SERVER_ERROR" || TRANSIENT_REPLY.test(messageOf(e));
}

export type Unavailable = (message: string, cause?: unknown) => Error;

export class ScriptRunner {
  constructor(
    private readonly client: RedisClient,
    private readonly unavailable: Unavailable,
    private readonly timeoutMs = 5_000,
  ) {}

  async load(scripts: Iterable<Script>): Promise<void> {
    await Promise.all([...scripts].map((s) => this.command("SCRIPT", ["LOAD", s.source])));
  }

  /** One EVALSHA with no keys (scripts build their keys from ARGV); EVAL on NOSCRIPT. */
  async run(script: Script, args: string[]): Promise<unknown> {
    try {
      return await this.command("EVALSHA", [script.sha, "0", ...args]);
    } catch (e) {
      if (!isNoScript(e)) throw e;
      return await this.command("EVAL", [script.source, "0", ...args]);
    }
  }

  /** One command; rejects with the caller's unavailable error when Redis is down or silent. */
  async command(name: string, args: string[]): Promise<unknown> {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(this.unavailable(`Redis did not answer ${name} within ${this.timeoutMs} ms`)),
        this.timeoutMs,
      );
    });
    try {
      const reply: unknown = await Promise.race([this.client.send(name, args), timeout]);
      return reply;
    } catch (e) {
      if (isRedisDown(e)) throw this.unavailable(`Redis is unavailable: ${messageOf(e)}`, e);
      throw e;
    } finally {
      clearTimeout(timer);
    }
  }
}
