// In-process Broker: nodes that share one MemoryBus reach each other with no serialisation.
// A node on its own (the embedded default) has a bus of its own, where publishing finds no one.
import type { Broker, BrokerState, Envelope, EnvelopeHandler } from "./broker.ts";

/** The shared medium: channel → the brokers listening to it. */
export class MemoryBus {
  readonly channels = new Map<string, Set<MemoryBroker>>();

  listen(channel: string, broker: MemoryBroker): void {
    let set = this.channels.get(channel);
    if (set === undefined) {
      set = new Set();
      this.channels.set(channel, set);
    }
    set.add(broker);
  }

  unlisten(channel: string, broker: MemoryBroker): void {
    const set = this.channels.get(channel);
    if (set?.delete(broker) && set.size === 0) this.channels.delete(channel);
  }

  /** Delivers to every listener but `from` (or to it too with echo); returns how many others. */
  send(channel: string, envelope: Envelope, from: MemoryBroker): number {
    const set = this.channels.get(channel);
    if (set === undefined) return 0;
    let others = 0;
    for (const broker of set) {
      if (broker === from) {
        if (from.echo) from.receive(envelope, from.nodeId);
        continue;
      }
      others++;
      broker.receive(envelope, from.nodeId);
    }
    return others;
  }
}

export interface MemoryBrokerOptions {
  bus?: MemoryBus;
  /** Deliver this node's own envelopes back to it (default false). */
  echo?: boolean;
}

export class MemoryBroker implements Broker {
  readonly bus: MemoryBus;
  readonly echo: boolean;
  /** False on a bus of its own (one node): nothing to reach, state "off". */
  private readonly shared: boolean;
  private handler: EnvelopeHandler = () => {};
  private closed = false;

  constructor(
    readonly nodeId: string,
    options: MemoryBrokerOptions = {},
  ) {
    this.bus = options.bus ?? new MemoryBus();
    this.shared = options.bus !== undefined;
    this.echo = options.echo ?? false;
    this.bus.listen(ALL, this);
  }

  get state(): BrokerState {
    return this.shared ? "up" : "off";
  }

  onEnvelope(handler: EnvelopeHandler): void {
    this.handler = handler;
  }

  onRestore(_handler: () => void): void {}

  /** Called by the bus. */
  receive(envelope: Envelope, fromNode: string): void {
    if (!this.closed) this.handler(envelope, fromNode);
  }

  async subscribeRoom(room: string): Promise<void> {
    this.bus.listen(roomChannel(room), this);
  }

  async unsubscribeRoom(room: string): Promise<void> {
    this.bus.unlisten(roomChannel(room), this);
  }

  async subscribeUser(userId: string): Promise<void> {
    this.bus.listen(userChannel(userId), this);
  }

  async unsubscribeUser(userId: string): Promise<void> {
    this.bus.unlisten(userChannel(userId), this);
  }

  async publishRoom(room: string, envelope: Envelope): Promise<void> {
    this.bus.send(roomChannel(room), envelope, this);
  }

  async publishUser(userId: string, envelope: Envelope): Promise<number> {
    return this.bus.send(userChannel(userId), envelope, this);
  }

  async publishAll(envelope: Envelope): Promise<void> {
    this.bus.send(ALL, envelope, this);
  }

  /** The bus hands every envelope over as it is published: nothing is ever on its way. */
  async sync(_room: string, _timeoutMs: number): Promise<boolean> {
    return true;
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const channel of [...this.bus.channels.keys()]) this.bus.unlisten(channel, this);
  }
}

export const ALL = "all";
export const roomChannel = (room: string) => `room:${room}`;
export const userChannel = (userId: string) => `user:${userId}`;
