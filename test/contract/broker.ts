// The Broker contract: every implementation (memory, Redis) runs this same suite. A "world" is
// one shared backend (a MemoryBus, or one Redis with a fresh prefix); nodes made in one world
// reach each other. Call `brokerContract(name, newWorld)` from a *.test.ts file.
import { afterEach, describe, expect, test } from "bun:test";
import type { Broker, Envelope } from "../../src/cluster/broker.ts";

export interface BrokerWorld {
  node(id: string, options?: { echo?: boolean }): Promise<Broker>;
}

export type WorldFactory = () => Promise<BrokerWorld>;

const ALICE = "11111111-1111-4111-8111-111111111111";
const BOB = "22222222-2222-4222-8222-222222222222";

const chat = (room: string, content: string): Envelope => ({
  t: "message",
  m: { id: `id-${content}`, room, from: ALICE, content, sent_at: "2026-12-02T00:00:00.000Z" },
});

/** A node's inbox: every envelope it received, with the sending node. */
class Inbox {
  readonly got: Array<{ e: Envelope; from: string }> = [];
  constructor(readonly broker: Broker) {
    broker.onEnvelope((e, from) => this.got.push({ e, from }));
  }
  contents(): string[] {
    return this.got.map(({ e }) => (e.t === "message" ? e.m.content : e.t));
  }
  async until(cond: (inbox: Inbox) => boolean, ms = 3000): Promise<void> {
    const deadline = Date.now() + ms;
    while (!cond(this)) {
      if (Date.now() > deadline) throw new Error(`inbox: timed out with ${this.contents()}`);
      await Bun.sleep(5);
    }
  }
  /**
   * Proves nothing else is on its way: `via` publishes a marker on a channel this node hears
   * (after what must not arrive); the marker arriving means anything earlier would have too.
   */
  async settle(via: Broker, room: string): Promise<void> {
    const marker = `settle-${crypto.randomUUID()}`;
    const before = this.got.length;
    await via.publishRoom(room, chat(room, marker));
    await this.until((i) =>
      i.got.slice(before).some(({ e }) => e.t === "message" && e.m.content === marker),
    );
    this.got.splice(
      this.got.findIndex(({ e }) => e.t === "message" && e.m.content === marker),
      1,
    );
  }
}

export function brokerContract(name: string, newWorld: WorldFactory): void {
  describe(`Broker contract: ${name}`, () => {
    let open: Broker[] = [];
    const nodes = async (count: number, options?: { echo?: boolean }) => {
      const world = await newWorld();
      const made: Inbox[] = [];
      for (let i = 0; i < count; i++) {
        const b = await world.node(`node${i}-${crypto.randomUUID().slice(0, 6)}`, options);
        open.push(b);
        made.push(new Inbox(b));
      }
      return made;
    };
    afterEach(async () => {
      for (const b of open) await b.close();
      open = [];
    });

    test("a room message reaches the nodes listening to the room, not others, not itself", async () => {
      const [a, b, c] = await nodes(3);
      if (!a || !b || !c) throw new Error("nodes");
      await b.broker.subscribeRoom("lobby");
      await c.broker.subscribeRoom("other");
      await a.broker.publishRoom("lobby", chat("lobby", "hello"));
      await b.until((i) => i.got.length === 1);
      expect(b.got[0]).toEqual({ e: chat("lobby", "hello"), from: a.broker.nodeId });
      await c.settle(a.broker, "other");
      expect(c.got).toEqual([]);
      await a.broker.subscribeRoom("probe");
      await a.settle(b.broker, "probe");
      expect(a.got).toEqual([]);
    });

    test("subscribing twice delivers once; unsubscribe stops delivery; subscribe again resumes", async () => {
      const [a, b] = await nodes(2);
      if (!a || !b) throw new Error("nodes");
      await b.broker.subscribeRoom("r");
      await b.broker.subscribeRoom("r");
      await a.broker.publishRoom("r", chat("r", "one"));
      await b.settle(a.broker, "r");
      expect(b.contents()).toEqual(["one"]);
      await b.broker.unsubscribeRoom("r");
      await a.broker.publishRoom("r", chat("r", "two"));
      await b.broker.subscribeRoom("probe");
      await b.settle(a.broker, "probe");
      expect(b.contents()).toEqual(["one"]);
      await b.broker.subscribeRoom("r");
      await a.broker.publishRoom("r", chat("r", "three"));
      await b.settle(a.broker, "r");
      expect(b.contents()).toEqual(["one", "three"]);
    });

    test("publishUser reaches the user's nodes and counts the other nodes that got it", async () => {
      const [a, b, c] = await nodes(3);
      if (!a || !b || !c) throw new Error("nodes");
      const kick: Envelope = { t: "kick", user: BOB, reason: "User deactivated" };
      expect(await a.broker.publishUser(BOB, kick)).toBe(0);
      await b.broker.subscribeUser(BOB);
      expect(await a.broker.publishUser(BOB, kick)).toBe(1);
      await c.broker.subscribeUser(BOB);
      await a.broker.subscribeUser(BOB);
      // The publishing node's own subscription is not counted.
      expect(await a.broker.publishUser(BOB, kick)).toBe(2);
      await b.until((i) => i.got.length === 2);
      await c.until((i) => i.got.length === 1);
      expect(c.got[0]).toEqual({ e: kick, from: a.broker.nodeId });
      await c.broker.unsubscribeUser(BOB);
      expect(await a.broker.publishUser(BOB, kick)).toBe(1);
      expect(await a.broker.publishUser(ALICE, kick)).toBe(0);
    });

    test("publishAll reaches every other node with the envelope intact", async () => {
      const [a, b, c] = await nodes(3);
      if (!a || !b || !c) throw new Error("nodes");
      const envelopes: Envelope[] = [
        {
          t: "broadcast",
          m: {
            id: "b1",
            from: ALICE,
            content: "maintenance at 5 ✓ \u2028",
            sent_at: "2026-12-02T00:00:00.000Z",
          },
        },
        { t: "user_changed", user: BOB },
        { t: "room_closed", room: "lobby", by: ALICE },
        {
          t: "direct",
          m: {
            id: "d1",
            from: ALICE,
            to: BOB,
            content: '"quoted" \\ \n',
            sent_at: "2026-12-02T00:00:00.000Z",
          },
        },
      ];
      for (const e of envelopes) await a.broker.publishAll(e);
      await b.until((i) => i.got.length === envelopes.length);
      await c.until((i) => i.got.length === envelopes.length);
      expect(b.got.map((g) => g.e)).toEqual(envelopes);
      expect(c.got.map((g) => g.from)).toEqual(envelopes.map(() => a.broker.nodeId));
      await a.broker.subscribeRoom("probe");
      await a.settle(b.broker, "probe");
      expect(a.got).toEqual([]);
    });

    test("2,000 messages published without waiting arrive exactly once, in order", async () => {
      const [a, b] = await nodes(2);
      if (!a || !b) throw new Error("nodes");
      await b.broker.subscribeRoom("r");
      const sent = Array.from({ length: 2000 }, (_, i) => String(i));
      await Promise.all(sent.map((c) => a.broker.publishRoom("r", chat("r", c))));
      await b.until((i) => i.got.length >= sent.length);
      await b.settle(a.broker, "r");
      expect(b.contents()).toEqual(sent);
    });

    test("with echo, every node sees one room's messages in the same order, its own included", async () => {
      const [a, b] = await nodes(2, { echo: true });
      if (!a || !b) throw new Error("nodes");
      await a.broker.subscribeRoom("r");
      await b.broker.subscribeRoom("r");
      const fromA = Array.from({ length: 300 }, (_, i) => `a${i}`);
      const fromB = Array.from({ length: 300 }, (_, i) => `b${i}`);
      await Promise.all([
        ...fromA.map((c) => a.broker.publishRoom("r", chat("r", c))),
        ...fromB.map((c) => b.broker.publishRoom("r", chat("r", c))),
      ]);
      await a.until((i) => i.got.length === 600);
      await b.until((i) => i.got.length === 600);
      expect(a.contents()).toEqual(b.contents());
      expect(a.contents().filter((c) => c.startsWith("a"))).toEqual(fromA);
      expect(a.contents().filter((c) => c.startsWith("b"))).toEqual(fromB);
    });

    test("sync is a barrier: once it resolves, the room's envelopes published before it have come; it delivers nothing itself", async () => {
      const [a, b, c] = await nodes(3);
      if (!a || !b || !c) throw new Error("nodes");
      await b.broker.subscribeRoom("r");
      await c.broker.subscribeRoom("r");
      const sent = Array.from({ length: 500 }, (_, i) => String(i));
      await Promise.all(sent.map((x) => a.broker.publishRoom("r", chat("r", x))));
      expect(await b.broker.sync("r", 3000)).toBe(true);
      expect(b.contents()).toEqual(sent);
      // The marker is no envelope: the other listener and b itself get nothing for it.
      await c.until((i) => i.got.length >= sent.length);
      await c.settle(a.broker, "r");
      await b.until((i) => i.contents().some((x) => x.startsWith("settle-")));
      const real = (i: Inbox) => i.contents().filter((x) => !x.startsWith("settle-"));
      expect(real(c)).toEqual(sent);
      expect(real(b)).toEqual(sent);
    });

    test("a closed node receives nothing more", async () => {
      const [a, b, c] = await nodes(3);
      if (!a || !b || !c) throw new Error("nodes");
      await b.broker.subscribeRoom("r");
      await c.broker.subscribeRoom("r");
      await b.broker.close();
      await a.broker.publishRoom("r", chat("r", "after"));
      await c.settle(a.broker, "r");
      await Bun.sleep(20);
      expect(b.got).toEqual([]);
      expect(c.contents()).toEqual(["after"]);
    });
  });
}
