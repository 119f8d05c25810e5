// A child Bun process driven over stdin/stdout, one JSON command and one JSON reply per line,
// every call with a timeout; any script (bench/c100k-client.ts, bench/history-client.ts; typed
// for bench/client.ts by bench/agent.ts; the child side is bench/line-serve.ts). Kills the child
// if it does not exit when asked.
import type { Subprocess } from "bun";
import { pinned } from "./servers.ts";

type Reply = { id: number; ok: true; result: unknown } | { id: number; ok: false; error: string };

export class LineAgent {
  private seq = 0;
  private readonly waiting = new Map<number, (r: Reply) => void>();
  private dead: string | null = null;

  private constructor(
    readonly name: string,
    private readonly proc: Subprocess<"pipe", "pipe", "inherit" | "ignore">,
  ) {
    this.readReplies().catch((e) => this.fail(`reader: ${String(e)}`));
    proc.exited.then((code) => this.fail(`${name} exited with ${code}`));
  }

  /** `nice`: run the child at that niceness (a load generator that must not starve a measuring one). */
  static start(
    name: string,
    script: string,
    opts: { core: number; progress: boolean; nice?: number },
  ): LineAgent {
    const cmd = pinned(opts.core, [process.execPath, script]);
    const niced = opts.nice === undefined ? cmd : ["nice", "-n", String(opts.nice), ...cmd];
    const proc = Bun.spawn(niced, {
      stdin: "pipe",
      stdout: "pipe",
      stderr: opts.progress ? "inherit" : "ignore",
    });
    return new LineAgent(name, proc);
  }

  get pid(): number {
    return this.proc.pid;
  }

  private fail(why: string): void {
    if (this.dead === null) this.dead = why;
    for (const [id, resolve] of this.waiting) resolve({ id, ok: false, error: why });
    this.waiting.clear();
  }

  private async readReplies(): Promise<void> {
    const decoder = new TextDecoder();
    let buffer = "";
    for await (const chunk of this.proc.stdout) {
      buffer += decoder.decode(chunk, { stream: true });
      let nl = buffer.indexOf("\n");
      while (nl >= 0) {
        const line = buffer.slice(0, nl);
        buffer = buffer.slice(nl + 1);
        nl = buffer.indexOf("\n");
        if (line.trim() === "") continue;
        const reply = JSON.parse(line) as Reply;
        const resolve = this.waiting.get(reply.id);
        this.waiting.delete(reply.id);
        resolve?.(reply);
      }
    }
  }

  /** Sends one command; rejects on an error reply, on the child's death, or after `timeoutMs`. */
  async call<T>(
    cmd: { readonly op: string } | { readonly op: string; readonly [k: string]: unknown },
    timeoutMs: number,
  ): Promise<T> {
    if (this.dead !== null) throw new Error(this.dead);
    const id = ++this.seq;
    const reply = await new Promise<Reply>((resolve) => {
      const timer = setTimeout(() => {
        this.waiting.delete(id);
        resolve({ id, ok: false, error: `${cmd.op} timed out after ${timeoutMs} ms` });
      }, timeoutMs);
      this.waiting.set(id, (r) => {
        clearTimeout(timer);
        resolve(r);
      });
      this.proc.stdin.write(`${JSON.stringify({ id, ...cmd })}\n`);
      this.proc.stdin.flush();
    });
    if (!reply.ok) throw new Error(`${this.name}: ${cmd.op}: ${reply.error}`);
    return reply.result as T;
  }

  /** Asks the child to exit (closing its sockets); kills it if it has not within `ms`. */
  async stop(ms = 10_000): Promise<void> {
    if (this.dead === null) {
      try {
        await this.call({ op: "exit" }, ms);
      } catch {}
    }
    const exited = await Promise.race([this.proc.exited, Bun.sleep(ms).then(() => null)]);
    if (exited === null) {
      this.proc.kill("SIGKILL");
      await this.proc.exited;
    }
  }
}
