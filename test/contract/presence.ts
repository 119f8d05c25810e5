// The Presence contract: memory and Redis run this same suite. A "world" is one shared backend;
// stores opened in one world are two nodes of one cluster (for memory: the same instance).
// Members are `${nodeId}:${connId}`: "n1:…" sockets are added through node A, "n2:…" through B.
import { afterEach, describe, expect, test } from "bun:test";
import type { Presence } from "../../src/presence/presence.ts";

export interface PresenceWorld {
  /** A store on the shared backend (call twice for two nodes' views). */
  open(): Promise<Presence>;
}

const ALICE = "11111111-1111-4111-8111-111111111111";
const BOB = "22222222-2222-4222-8222-222222222222";
const CAROL = "33333333-3333-4333-8333-333333333333";

export function presenceContract(name: string, newWorld: () => Promise<PresenceWorld>): void {
  describe(`Presence contract: ${name}`, () => {
    let opened: Presence[] = [];
    const two = async () => {
      const world = await newWorld();
      const a = await world.open();
      const b = await world.open();
      opened.push(a, b);
      return [a, b] as const;
    };
    afterEach(async () => {
      for (const p of opened) await p.dispose();
      opened = [];
    });

    test("two tabs of one user on one node: join on the first, leave on the last", async () => {
      const [a, b] = await two();
      expect(await a.add("r", ALICE, "n1:1")).toBe(true);
      expect(await a.add("r", ALICE, "n1:2")).toBe(false);
      expect(await b.list("r")).toEqual([{ user_id: ALICE, connections: 2 }]);
      expect(await a.remove("r", ALICE, "n1:1")).toBe(false);
      expect(await b.list("r")).toEqual([{ user_id: ALICE, connections: 1 }]);
      expect(await a.remove("r", ALICE, "n1:2")).toBe(true);
      expect(await b.list("r")).toEqual([]);
      // The room is empty again: the next socket is a first one.
      expect(await a.add("r", ALICE, "n1:3")).toBe(true);
    });

    test("two tabs of one user on two nodes: first and last are cluster-wide", async () => {
      const [a, b] = await two();
      expect(await a.add("r", ALICE, "n1:1")).toBe(true);
      expect(await b.add("r", ALICE, "n2:1")).toBe(false);
      expect(await a.list("r")).toEqual([{ user_id: ALICE, connections: 2 }]);
      expect(await a.remove("r", ALICE, "n1:1")).toBe(false);
      expect(await b.remove("r", ALICE, "n2:1")).toBe(true);
      expect(await a.list("r")).toEqual([]);
    });

    test("add and remove are idempotent per member; absent members count nothing", async () => {
      const [a, b] = await two();
      expect(await a.add("r", ALICE, "n1:1")).toBe(true);
      expect(await a.add("r", ALICE, "n1:1")).toBe(false);
      expect(await b.add("r", ALICE, "n1:1")).toBe(false);
      // A member already in the room under another user id counts nothing either.
      expect(await a.add("r", BOB, "n1:1")).toBe(false);
      expect(await a.list("r")).toEqual([{ user_id: ALICE, connections: 1 }]);
      // Not in this room, never added, or in another room only.
      expect(await a.remove("r", ALICE, "n1:9")).toBe(false);
      expect(await a.remove("other", ALICE, "n1:1")).toBe(false);
      expect(await a.remove("nowhere", ALICE, "n1:1")).toBe(false);
      expect(await a.list("r")).toEqual([{ user_id: ALICE, connections: 1 }]);
      expect(await a.remove("r", ALICE, "n1:1")).toBe(true);
      expect(await a.remove("r", ALICE, "n1:1")).toBe(false);
      expect(await b.remove("r", ALICE, "n1:1")).toBe(false);
      expect(await a.list("r")).toEqual([]);
    });

    test("a member counts against the user it was added with", async () => {
      const [a] = await two();
      await a.add("r", ALICE, "n1:1");
      await a.add("r", BOB, "n1:2");
      expect(await a.remove("r", BOB, "n1:1")).toBe(true);
      expect(await a.list("r")).toEqual([{ user_id: BOB, connections: 1 }]);
    });

    test("list: users with their socket counts across nodes, in user id order, per room", async () => {
      const [a, b] = await two();
      expect(await a.list("r")).toEqual([]);
      await b.add("r", CAROL, "n2:1");
      await a.add("r", ALICE, "n1:1");
      await b.add("r", BOB, "n2:2");
      await a.add("r", CAROL, "n1:2");
      await b.add("r", CAROL, "n2:3");
      await a.add("other", BOB, "n1:1");
      const expected = [
        { user_id: ALICE, connections: 1 },
        { user_id: BOB, connections: 1 },
        { user_id: CAROL, connections: 3 },
      ];
      expect(await a.list("r")).toEqual(expected);
      expect(await b.list("r")).toEqual(expected);
      expect(await b.list("other")).toEqual([{ user_id: BOB, connections: 1 }]);
      // Code-unit order, not insertion or locale order.
      await a.add("s", "b", "n1:1");
      await a.add("s", "B", "n1:2");
      await a.add("s", "a", "n1:3");
      await a.add("s", "A", "n1:4");
      expect((await b.list("s")).map((u) => u.user_id)).toEqual(["A", "B", "a", "b"]);
    });

    test("purgeNode returns exactly the (room, user) pairs that lost their last socket", async () => {
      const [a, b] = await two();
      // Alice: sockets on both nodes in r1 (no leave), two on n1 only in r3 (one leave).
      await a.add("r1", ALICE, "n1:1");
      await b.add("r1", ALICE, "n2:1");
      await a.add("r3", ALICE, "n1:1");
      await a.add("r3", ALICE, "n1:2");
      // Bob: on n1 only, in two rooms (two leaves).
      await a.add("r1", BOB, "n1:3");
      await a.add("r2", BOB, "n1:3");
      // Carol: on n2 only (untouched).
      await b.add("r2", CAROL, "n2:2");
      expect(await b.purgeNode("n1")).toEqual([
        { room: "r1", user_id: BOB },
        { room: "r2", user_id: BOB },
        { room: "r3", user_id: ALICE },
      ]);
      expect(await a.list("r1")).toEqual([{ user_id: ALICE, connections: 1 }]);
      expect(await a.list("r2")).toEqual([{ user_id: CAROL, connections: 1 }]);
      expect(await a.list("r3")).toEqual([]);
      // Idempotent; unknown nodes have nothing.
      expect(await a.purgeNode("n1")).toEqual([]);
      expect(await b.purgeNode("n1")).toEqual([]);
      expect(await a.purgeNode("n9")).toEqual([]);
      // The purged sockets are gone for remove too, and the node can add them again.
      expect(await a.remove("r1", BOB, "n1:3")).toBe(false);
      expect(await a.add("r1", BOB, "n1:3")).toBe(true);
      expect(await a.add("r1", ALICE, "n1:1")).toBe(false);
      expect(await a.list("r1")).toEqual([
        { user_id: ALICE, connections: 2 },
        { user_id: BOB, connections: 1 },
      ]);
      // The other node's last sockets leave on its purge.
      expect(await a.purgeNode("n2")).toEqual([{ room: "r2", user_id: CAROL }]);
      expect(await a.list("r1")).toEqual([
        { user_id: ALICE, connections: 1 },
        { user_id: BOB, connections: 1 },
      ]);
    });

    test("purgeNode matches the whole node id, also one with ':' in it", async () => {
      const [a] = await two();
      const members = ["x:y:1", "x:y:2", "x:z:1", "x:1", "x", "x:yy:1", "xx:1", "n10:1"];
      for (const [i, m] of members.entries()) await a.add("r", `u${i}`, m);
      expect(await a.purgeNode("x:y")).toEqual([
        { room: "r", user_id: "u0" },
        { room: "r", user_id: "u1" },
      ]);
      expect(await a.purgeNode("n1")).toEqual([]);
      expect(await a.purgeNode("x")).toEqual([
        { room: "r", user_id: "u2" },
        { room: "r", user_id: "u3" },
        { room: "r", user_id: "u5" },
      ]);
      expect(await a.purgeNode("x")).toEqual([]);
      // "x" (no ':') belongs to no node; "xx" and "n10" are other nodes.
      expect((await a.list("r")).map((u) => u.user_id)).toEqual(["u4", "u6", "u7"]);
    });

    test("room names with ':' and multi-byte characters survive the node index", async () => {
      const [a, b] = await two();
      const rooms = ["a:b", "a", "kamar-é漢", "1:x", ":", ""];
      for (const room of rooms) {
        await a.add(room, ALICE, "n1:1");
        await b.add(room, BOB, "n2:1");
      }
      expect(await b.purgeNode("n1")).toEqual(
        rooms.toSorted().map((room) => ({ room, user_id: ALICE })),
      );
      for (const room of rooms)
        expect(await a.list(room)).toEqual([{ user_id: BOB, connections: 1 }]);
      await a.drop("a:b");
      expect(await a.purgeNode("n2")).toEqual(
        rooms
          .filter((r) => r !== "a:b")
          .toSorted()
          .map((room) => ({ room, user_id: BOB })),
      );
    });

    test("drop forgets the room; other rooms keep theirs, and a purge no longer sees it", async () => {
      const [a, b] = await two();
      await a.add("gone", ALICE, "n1:1");
      await b.add("gone", BOB, "n2:1");
      await a.add("kept", ALICE, "n1:1");
      await b.drop("gone");
      expect(await a.list("gone")).toEqual([]);
      expect(await a.remove("gone", ALICE, "n1:1")).toBe(false);
      expect(await a.list("kept")).toEqual([{ user_id: ALICE, connections: 1 }]);
      expect(await a.purgeNode("n2")).toEqual([]);
      expect(await b.purgeNode("n1")).toEqual([{ room: "kept", user_id: ALICE }]);
      await a.drop("gone");
      await a.drop("never");
      // A room of the same name later starts from nothing.
      expect(await a.add("gone", ALICE, "n1:1")).toBe(true);
      expect(await a.list("gone")).toEqual([{ user_id: ALICE, connections: 1 }]);
    });

    test("racing adds of one user from two nodes: exactly one first; racing removes: one last", async () => {
      const [a, b] = await two();
      for (let round = 0; round < 5; round++) {
        const room = `race${round}`;
        const sockets = Array.from({ length: 10 }, (_, i) => ({
          node: i % 2 ? a : b,
          member: `${i % 2 ? "n1" : "n2"}:${i}`,
        }));
        const added = await Promise.all(sockets.map((s) => s.node.add(room, ALICE, s.member)));
        expect(added.filter(Boolean)).toHaveLength(1);
        expect(await a.list(room)).toEqual([{ user_id: ALICE, connections: 10 }]);
        const removed = await Promise.all(sockets.map((s) => s.node.remove(room, ALICE, s.member)));
        expect(removed.filter(Boolean)).toHaveLength(1);
        expect(await b.list(room)).toEqual([]);
      }
      // The same member raced from both views counts once.
      const same = await Promise.all([a.add("r", BOB, "n1:1"), b.add("r", BOB, "n1:1")]);
      expect(same.filter(Boolean)).toHaveLength(1);
      expect(await a.list("r")).toEqual([{ user_id: BOB, connections: 1 }]);
      const gone = await Promise.all([a.remove("r", BOB, "n1:1"), b.remove("r", BOB, "n1:1")]);
      expect(gone.filter(Boolean)).toHaveLength(1);
    });

    test("a purge racing the removes of the same sockets: each last socket leaves once", async () => {
      const [a, b] = await two();
      for (let i = 0; i < 20; i++) await a.add(`r${i % 4}`, `u${i}`, `n1:${i}`);
      const [purged, removed] = await Promise.all([
        b.purgeNode("n1"),
        Promise.all(
          Array.from({ length: 20 }, (_, i) => a.remove(`r${i % 4}`, `u${i}`, `n1:${i}`)),
        ),
      ]);
      // Every user leaves exactly once: by the purge or by its remove, never both, never neither.
      const leftBy = [
        ...purged.map((l) => l.user_id),
        ...removed.flatMap((last, i) => (last ? [`u${i}`] : [])),
      ];
      expect(leftBy.toSorted()).toEqual(Array.from({ length: 20 }, (_, i) => `u${i}`).toSorted());
      expect(purged.every((l) => l.room === `r${Number(l.user_id.slice(1)) % 4}`)).toBe(true);
      for (let r = 0; r < 4; r++) expect(await b.list(`r${r}`)).toEqual([]);
    });
  });
}
