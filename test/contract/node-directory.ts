// The NodeDirectory contract: memory and Redis run this same suite. A "world" is one shared
// backend; directories made in one world are nodes of one cluster (for memory: one instance).
import { afterEach, describe, expect, test } from "bun:test";
import type { NodeDirectory } from "../../src/cluster/nodes.ts";

export interface DirectoryWorld {
  /** A directory on the shared backend (call twice for two nodes' views). */
  open(): Promise<NodeDirectory>;
}

const ALICE = "11111111-1111-4111-8111-111111111111";
const BOB = "22222222-2222-4222-8222-222222222222";

export function nodeDirectoryContract(name: string, newWorld: () => Promise<DirectoryWorld>): void {
  describe(`NodeDirectory contract: ${name}`, () => {
    let opened: NodeDirectory[] = [];
    const two = async () => {
      const world = await newWorld();
      const a = await world.open();
      const b = await world.open();
      opened.push(a, b);
      return [a, b] as const;
    };
    afterEach(async () => {
      for (const d of opened) await d.dispose();
      opened = [];
    });

    test("heartbeats list live nodes with their counts; the first beat is fresh, later ones not", async () => {
      const [a, b] = await two();
      expect(await a.heartbeat("n1", 3, 10_000)).toBe(true);
      expect(await a.heartbeat("n1", 4, 11_000)).toBe(false);
      expect(await b.heartbeat("n2", 7, 10_500)).toBe(true);
      expect(await b.live(9_000)).toEqual([
        { id: "n1", connections: 4 },
        { id: "n2", connections: 7 },
      ]);
      // n2's heartbeat has expired at 10,500.
      expect(await a.live(10_500)).toEqual([{ id: "n1", connections: 4 }]);
      expect(await a.live(11_000)).toEqual([]);
    });

    test("a dead node is claimed by one caller only, again after the lease, and gone once buried", async () => {
      const [a, b] = await two();
      await a.heartbeat("dead", 1, 1_000);
      await a.heartbeat("alive", 1, 100_000);
      expect(await a.claimDead(500, 5_000)).toEqual([]);
      const claims = await Promise.all([a.claimDead(2_000, 5_000), b.claimDead(2_000, 5_000)]);
      expect(claims.flat()).toEqual(["dead"]);
      expect(await b.claimDead(3_000, 5_000)).toEqual([]);
      await a.bury("dead");
      expect(await b.claimDead(20_000, 5_000)).toEqual([]);
      expect((await b.live(2_000)).map((n) => n.id)).toEqual(["alive"]);
      // A dead node that nobody buried can be claimed again once the lease is over.
      await a.heartbeat("dead2", 1, 1_000);
      expect(await a.claimDead(2_000, 1)).toEqual(["dead2"]);
      await Bun.sleep(20);
      expect(await b.claimDead(2_000, 5_000)).toEqual(["dead2"]);
    });

    test("a buried node beating again is fresh (it must record its state again)", async () => {
      const [a] = await two();
      await a.heartbeat("n1", 0, 1_000);
      await a.bury("n1");
      expect(await a.heartbeat("n1", 0, 5_000)).toBe(true);
    });

    test("per-user sockets are counted across nodes and capped at max", async () => {
      const [a, b] = await two();
      expect(await a.addConnection(ALICE, "n1", 3)).toBe(true);
      expect(await b.addConnection(ALICE, "n2", 3)).toBe(true);
      expect(await a.addConnection(ALICE, "n2", 3)).toBe(true);
      expect(await b.addConnection(ALICE, "n1", 3)).toBe(false);
      expect(await a.userConnections(ALICE)).toBe(3);
      expect(await a.addConnection(BOB, "n1", 3)).toBe(true);
      await a.removeConnection(ALICE, "n2");
      expect(await b.userConnections(ALICE)).toBe(2);
      expect(await b.addConnection(ALICE, "n1", 3)).toBe(true);
      // Never below zero: removing what is not there changes nothing.
      await a.removeConnection(ALICE, "n9");
      await a.removeConnection(BOB, "n1");
      await a.removeConnection(BOB, "n1");
      expect(await a.userConnections(BOB)).toBe(0);
      expect(await a.addConnection(BOB, "n1", 1)).toBe(true);
      expect(await a.addConnection(BOB, "n2", 1)).toBe(false);
    });

    test("racing adds never pass max", async () => {
      const [a, b] = await two();
      const results = await Promise.all(
        Array.from({ length: 20 }, (_, i) => (i % 2 ? a : b).addConnection(ALICE, `n${i % 3}`, 5)),
      );
      expect(results.filter(Boolean)).toHaveLength(5);
      expect(await a.userConnections(ALICE)).toBe(5);
    });

    test("bury removes the node's per-user counts", async () => {
      const [a, b] = await two();
      await a.heartbeat("n1", 2, 1_000);
      await a.addConnection(ALICE, "n1", 10);
      await a.addConnection(ALICE, "n1", 10);
      await b.addConnection(ALICE, "n2", 10);
      await a.addConnection(BOB, "n1", 10);
      await b.bury("n1");
      expect(await a.userConnections(ALICE)).toBe(1);
      expect(await a.userConnections(BOB)).toBe(0);
    });

    test("resync replaces one node's counts and leaves the others'", async () => {
      const [a, b] = await two();
      await a.addConnection(ALICE, "n1", 10);
      await a.addConnection(BOB, "n1", 10);
      await b.addConnection(ALICE, "n2", 10);
      await a.resync(
        "n1",
        new Map([
          [ALICE, 4],
          [BOB, 0],
        ]),
      );
      expect(await b.userConnections(ALICE)).toBe(5);
      expect(await b.userConnections(BOB)).toBe(0);
      // Many users (more than one script call's worth).
      const many = new Map(Array.from({ length: 2500 }, (_, i) => [`u${i}`, 1 + (i % 3)] as const));
      await a.resync("n1", many);
      expect(await b.userConnections(ALICE)).toBe(1);
      expect(await b.userConnections("u2499")).toBe(1 + (2499 % 3));
      await a.resync("n1", new Map());
      expect(await b.userConnections("u7")).toBe(0);
      expect(await b.userConnections(ALICE)).toBe(1);
    });
  });
}
