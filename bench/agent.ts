// Harness side of a load client: spawns bench/client.ts pinned to the client core and sends it
// commands, one JSON line each, awaiting the matching reply line (every call has a timeout).
import type { Subprocess } from "bun";
import type { Commands, Op, Reply, Results } from "./commands.ts";
import { pinned } from "./servers.ts";

const CLIENT = `${import.meta.dir}/client.ts`;

export class Agent {
  private seq = 0;
  private readonly waiting = new Map<number, (r: Reply) => void>();
  private dead: string | null = null;

  private constructor(
    readonly name: string,
    private readonly proc: Subprocess<"pipe", "pipe", "inherit" | "ignore">,
  ) {
    this.readReplies().catch((e) => this.fail(`reader: ${String(e)}`));
    proc.exited.then((code) => this.fail(`client ${name} exited with ${code}`));
  }

  static start(name: string, opts: { core: number; progress: boolean }): Agent {
    const proc = Bun.spawn(pinned(opts.core, [process.execPath, CLIENT]), {
      stdin: "pipe",
      stdout: "pipe",
      stderr: opts.progress ? "inherit" : "ignore",
    });
    return new Agent(name, proc);
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

  /** Sends one command; rejects on error, on the client's death, or after `timeoutMs`. */
  async call<C extends Commands[Op]>(cmd: C, timeoutMs: number): Promise<Results[C["op"]]> {
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
    if (!reply.ok) throw new Error(`client ${this.name}: ${cmd.op}: ${reply.error}`);
    return reply.result as Results[C["op"]];
  }

  /** Asks the client to close its sockets and exit; kills it if it does not within 5 s. */
  async stop(): Promise<void> {
    if (this.dead === null) {
      try {
        await this.call({ op: "exit" }, 5000);
      } catch {}
    }
    const exited = await Promise.race([this.proc.exited, Bun.sleep(5000).then(() => null)]);
    if (exited === null) this.proc.kill("SIGKILL");
  }
}
