// Broker over Redis pub/sub (Bun's built-in RedisClient). One connection publishes, a duplicate
// listens: a subscribed Redis connection can do nothing else. Each envelope is serialised once
// as `{"n":nodeId,"e":envelope}`; a node drops its own (unless echo) — it delivered them already.
// Bun's client reconnects by itself but does not restore subscriptions: on every reconnect this
// broker unsubscribes and subscribes again to every channel it wants (a plain second subscribe
// would deliver twice). `sync` is a barrier: a marker of this node's, `{"n":nodeId,"y":id}`, on
// the room's channel, behind whatever was published there before it.
import type { RedisClient } from "bun";
import type { Announce } from "../history/history.ts";
import {
  type Broker,
  type BrokerState,
  BrokerUnavailableError,
  type Envelope,
  type EnvelopeHandler,
} from "./broker.ts";
import { Coalescer } from "./coalescer.ts";
import { ALL, roomChannel, userChannel } from "./memory-broker.ts";

export interface RedisBrokerOptions {
  /** Channel name prefix (default `kabar:`): several clusters can share one Redis. */
  prefix?: string;
  echo?: boolean;
  /**
   * CLUSTER_COALESCE_MS (coalescer.ts): while envelopes arrive densely, the first waits this long
   * and the rest go out with it. 0 (the default here): each is handed on as it arrives.
   */
  coalesceMs?: number;
}

/** `{"n","e"}`: one envelope; `{"n","s","p","b"}`: room messages of one batch of history appends. */
interface Wire {
  n: string;
  e?: Envelope;
  /** Set by the room history's atomic append: the first message's seq, and the epoch. */
  s?: number;
  p?: string;
  /** The batch's messages, in seq order (seq s, s + 1, …). */
  b?: Envelope[];
  /** A `sync` marker: its id among the publishing node's. */
  y?: number;
}

interface Incoming {
  e: Envelope;
  /** The publishing node. */
  n: string;
}

export class RedisBroker implements Broker {
  private readonly prefix: string;
  private readonly echo: boolean;
  private handler: EnvelopeHandler = () => {};
  /** Envelopes with their node, in arrival order, to `handler` (held briefly under load). */
  private readonly incoming: Coalescer<Incoming>;
  private restoreHandler: () => void = () => {};
  /** Channels (without prefix) this node wants to hear. */
  private readonly wanted = new Set<string>();
  private readonly listener = (message: string, channel: string) => this.receive(message, channel);
  private closed = false;
  private readonly batchHead: string;
  /**
   * From a reconnect of the subscriber until every wanted channel is subscribed again: a room
   * message sent then would get its seq and be published to nobody here (not even its sender's
   * echo), so the broker counts as down until then.
   */
  private restoring = false;
  /** `sync` calls waiting for their marker, by id. */
  private readonly syncs = new Map<number, (seen: boolean) => void>();
  private syncId = 0;

  private constructor(
    readonly nodeId: string,
    private readonly pub: RedisClient,
    private readonly sub: RedisClient,
    options: RedisBrokerOptions,
  ) {
    this.prefix = options.prefix ?? "kabar:";
    this.echo = options.echo ?? false;
    this.batchHead = `{"n":${JSON.stringify(nodeId)},"s":`;
    this.incoming = new Coalescer(options.coalesceMs ?? 0, (item) => this.handler(item.e, item.n));
  }

  sizes(): Record<string, number> {
    return { channels: this.wanted.size, held: this.incoming.size, syncs: this.syncs.size };
  }

  /** Takes a connected client for commands; makes its own subscriber connection. */
  static async create(
    nodeId: string,
    pub: RedisClient,
    options: RedisBrokerOptions = {},
  ): Promise<RedisBroker> {
    const sub = await pub.duplicate();
    if (!sub.connected) await sub.connect();
    const broker = new RedisBroker(nodeId, pub, sub, options);
    sub.onconnect = () => broker.resubscribe();
    await broker.listen(ALL);
    return broker;
  }

  get state(): BrokerState {
    return this.pub.connected && this.sub.connected && !this.restoring ? "up" : "down";
  }

  onEnvelope(handler: EnvelopeHandler): void {
    this.handler = handler;
  }

  onRestore(handler: () => void): void {
    this.restoreHandler = handler;
  }

  subscribeRoom(room: string): Promise<void> {
    return this.listen(roomChannel(room));
  }

  unsubscribeRoom(room: string): Promise<void> {
    return this.unlisten(roomChannel(room));
  }

  subscribeUser(userId: string): Promise<void> {
    return this.listen(userChannel(userId));
  }

  unsubscribeUser(userId: string): Promise<void> {
    return this.unlisten(userChannel(userId));
  }

  async publishRoom(room: string, envelope: Envelope): Promise<void> {
    await this.publish(roomChannel(room), envelope);
  }

  async publishUser(userId: string, envelope: Envelope): Promise<number> {
    const channel = userChannel(userId);
    const n = await this.publish(channel, envelope);
    // Redis counts this node's own subscription too.
    return this.wanted.has(channel) ? Math.max(0, n - 1) : n;
  }

  async publishAll(envelope: Envelope): Promise<void> {
    await this.publish(ALL, envelope);
  }

  async sync(room: string, timeoutMs: number): Promise<boolean> {
    const id = ++this.syncId;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const seen = new Promise<boolean>((resolve) => {
      this.syncs.set(id, resolve);
      timer = setTimeout(() => {
        this.syncs.delete(id);
        resolve(false);
      }, timeoutMs);
    });
    try {
      await this.pub.publish(
        this.prefix + roomChannel(room),
        `{"n":${JSON.stringify(this.nodeId)},"y":${id}}`,
      );
    } catch (e) {
      clearTimeout(timer);
      this.syncs.delete(id);
      throw new BrokerUnavailableError(e);
    }
    const ok = await seen;
    clearTimeout(timer);
    return ok;
  }

  /** Items are `{"t":"message","m":<message>,"c":<sender's socket>}` envelopes. */
  announce(room: string, sender: number): Announce {
    return {
      channel: this.prefix + roomChannel(room),
      head: this.batchHead,
      mid: ',"p":"',
      open: '","b":[',
      close: "]}",
      itemHead: '{"t":"message","m":',
      itemTail: `,"c":${sender}}`,
    };
  }

  async close(): Promise<void> {
    this.closed = true;
    this.wanted.clear();
    this.incoming.clear();
    for (const done of this.syncs.values()) done(false);
    this.syncs.clear();
    this.sub.onconnect = null;
    this.sub.close();
  }

  // ---------------------------------------------------------------- internals

  private async publish(channel: string, envelope: Envelope): Promise<number> {
    const wire = `{"n":${JSON.stringify(this.nodeId)},"e":${JSON.stringify(envelope)}}`;
    try {
      return await this.pub.publish(this.prefix + channel, wire);
    } catch (e) {
      throw new BrokerUnavailableError(e);
    }
  }

  private receive(message: string, _channel: string): void {
    if (this.closed) return;
    let wire: Wire;
    try {
      wire = JSON.parse(message) as Wire;
    } catch {
      return;
    }
    if (wire.y !== undefined) {
      // A barrier: what came before it on the channel goes out now (even if held), then it is done.
      const done = wire.n === this.nodeId ? this.syncs.get(wire.y) : undefined;
      if (done !== undefined) {
        this.syncs.delete(wire.y);
        this.incoming.flush();
        done(true);
      }
      return;
    }
    const batch = wire.b;
    if (batch !== undefined) {
      // In the room's order, to every node: this one's own sockets get them from here too.
      const first = wire.s ?? 0;
      const epoch = wire.p ?? "";
      const items: Incoming[] = new Array(batch.length);
      for (let k = 0; k < batch.length; k++) {
        const e = batch[k] as Envelope;
        if (e.t === "message") {
          e.m.seq = first + k;
          e.m.epoch = epoch;
        }
        items[k] = { e, n: wire.n };
      }
      this.incoming.add(items);
      return;
    }
    if (wire.e === undefined || (wire.n === this.nodeId && !this.echo)) return;
    this.incoming.add([{ e: wire.e, n: wire.n }]);
  }

  private async listen(channel: string): Promise<void> {
    if (this.wanted.has(channel)) return;
    this.wanted.add(channel);
    try {
      await this.sub.subscribe(this.prefix + channel, this.listener);
    } catch (e) {
      // Kept in `wanted`: the next reconnect subscribes it.
      throw new BrokerUnavailableError(e);
    }
  }

  private async unlisten(channel: string): Promise<void> {
    if (!this.wanted.delete(channel)) return;
    try {
      await this.sub.unsubscribe(this.prefix + channel);
    } catch {
      // Down: the subscription died with the connection, and it is no longer wanted.
    }
  }

  /** After a reconnect: every wanted channel again, exactly once. */
  private resubscribe(): void {
    if (this.closed) return;
    const channels = [...this.wanted];
    this.restoring = true;
    Promise.all(
      channels.map(async (channel) => {
        const name = this.prefix + channel;
        await this.sub.unsubscribe(name).catch(() => {});
        if (this.wanted.has(channel)) await this.sub.subscribe(name, this.listener);
      }),
    ).then(
      () => {
        this.restoring = false;
        this.restoreHandler();
      },
      () => {
        // Down again before it finished: the next onconnect tries again.
      },
    );
  }
}
