// Harness side of a load client: bench/client.ts in a child process pinned to the client core,
// driven by typed commands (bench/commands.ts) over bench/line-agent.ts's one-JSON-line protocol.
import type { Commands, Op, Results } from "./commands.ts";
import { LineAgent } from "./line-agent.ts";

const CLIENT = `${import.meta.dir}/client.ts`;

export class Agent {
  private constructor(private readonly line: LineAgent) {}

  static start(name: string, opts: { core: number; progress: boolean; nice?: number }): Agent {
    return new Agent(LineAgent.start(`client ${name}`, CLIENT, opts));
  }

  get name(): string {
    return this.line.name;
  }

  get pid(): number {
    return this.line.pid;
  }

  /** Sends one command; rejects on error, on the client's death, or after `timeoutMs`. */
  call<C extends Commands[Op]>(cmd: C, timeoutMs: number): Promise<Results[C["op"]]> {
    return this.line.call<Results[C["op"]]>(cmd, timeoutMs);
  }

  /** Asks the client to close its sockets and exit; kills it if it does not within 5 s. */
  stop(): Promise<void> {
    return this.line.stop(5000);
  }
}
