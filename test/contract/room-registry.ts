// The RoomRegistry contract: every implementation (memory, Redis) runs this same suite. Call
// `roomRegistryContract(name, factory, { pair })` from a *.test.ts file.
import { afterEach, describe, expect, test } from "bun:test";
import type { RoomLimits, RoomRegistry } from "../../src/rooms/registry.ts";

/** A registry with its own, empty state. */
export type RegistryFactory = (limits: RoomLimits) => Promise<RoomRegistry>;
/**
 * Two registries over ONE shared state, as two nodes of a cluster see it (Redis: two clients,
 * one prefix). Without it the "two nodes" cases run on one registry used twice.
 */
export type RegistryPairFactory = (limits: RoomLimits) => Promise<[RoomRegistry, RoomRegistry]>;

export interface ContractOptions {
  pair?: RegistryPairFactory;
}

const LIMITS: RoomLimits = { maxRooms: 100, maxRoomsPerUser: 10 };
const ALICE = "11111111-1111-4111-8111-111111111111";
const BOB = "22222222-2222-4222-8222-222222222222";

export function roomRegistryContract(
  name: string,
  factory: RegistryFactory,
  options: ContractOptions = {},
): void {
  describe(`RoomRegistry contract: ${name}`, () => {
    let open = new Set<RoomRegistry>();
    const make = async (limits = LIMITS) => {
      const r = await factory(limits);
      open.add(r);
      return r;
    };
    /** Two "nodes" sharing one registry state. */
    const makePair = async (limits = LIMITS): Promise<[RoomRegistry, RoomRegistry]> => {
      if (!options.pair) {
        const r = await make(limits);
        return [r, r];
      }
      const [a, b] = await options.pair(limits);
      open.add(a).add(b);
      return [a, b];
    };
    afterEach(async () => {
      for (const r of open) await r.dispose();
      open = new Set();
    });

    test("create records creator and time; creating does not join", async () => {
      const r = await make();
      const res = await r.create("lobby", ALICE, 1_000);
      expect(res).toEqual({
        ok: true,
        room: { name: "lobby", creator: ALICE, createdAt: 1_000, members: 0 },
      });
      expect(await r.get("lobby")).toEqual({
        name: "lobby",
        creator: ALICE,
        createdAt: 1_000,
        members: 0,
      });
      expect(await r.get("nope")).toBeUndefined();
    });

    test("a name is taken once; room_exists comes before limits", async () => {
      const r = await make({ maxRooms: 1, maxRoomsPerUser: 1 });
      expect((await r.create("a", ALICE, 1)).ok).toBe(true);
      expect(await r.create("a", BOB, 2)).toEqual({ ok: false, error: "room_exists" });
      expect(await r.create("b", BOB, 2)).toEqual({ ok: false, error: "max_rooms" });
    });

    test("rooms per user limit; closing frees the creator's slot", async () => {
      const r = await make({ maxRooms: 10, maxRoomsPerUser: 2 });
      await r.create("a", ALICE, 1);
      await r.create("b", ALICE, 2);
      expect(await r.create("c", ALICE, 3)).toEqual({ ok: false, error: "max_rooms_per_user" });
      expect((await r.create("c", BOB, 3)).ok).toBe(true);
      expect((await r.close("a", ALICE)).ok).toBe(true);
      expect((await r.create("c2", ALICE, 4)).ok).toBe(true);
    });

    test("rejoin re-creates a lost room as it was, then joins; an existing room is just joined", async () => {
      const r = await make({ maxRooms: 1, maxRoomsPerUser: 1 });
      const lost = { name: "lost", creator: ALICE, createdAt: 1_234 };
      expect(await r.rejoin(lost, "n1:1", 5_000)).toEqual({ ...lost, members: 1 });
      expect(await r.rejoin(lost, "n1:1", 5_000)).toEqual({ ...lost, members: 1 });
      expect(await r.rejoin({ ...lost, creator: BOB, createdAt: 9 }, "n2:1", 5_000)).toEqual({
        ...lost,
        members: 2,
      });
      expect(await r.get("lost")).toEqual({ ...lost, members: 2 });
      // It counts as Alice's room again (her slot and the total), and closing frees both.
      expect(await r.create("other", BOB, 6_000)).toEqual({ ok: false, error: "max_rooms" });
      expect((await r.close("lost", ALICE)).ok).toBe(true);
      expect((await r.create("mine", ALICE, 7_000)).ok).toBe(true);
    });

    test("join counts members once each; leave decrements; unknown room is undefined", async () => {
      const r = await make();
      await r.create("a", ALICE, 1);
      expect((await r.join("a", "n1:1", 2))?.members).toBe(1);
      expect((await r.join("a", "n1:2", 2))?.members).toBe(2);
      expect((await r.join("a", "n1:2", 2))?.members).toBe(2);
      await r.leave("a", "n1:1", 3);
      expect((await r.get("a"))?.members).toBe(1);
      await r.leave("a", "n1:1", 3);
      expect((await r.get("a"))?.members).toBe(1);
      expect(await r.join("missing", "n1:1", 3)).toBeUndefined();
      await r.leave("missing", "n1:1", 3);
    });

    test("close: only the creator; unknown room; members dropped", async () => {
      const r = await make();
      await r.create("a", ALICE, 1);
      await r.join("a", "n1:1", 2);
      expect(await r.close("a", BOB)).toEqual({ ok: false, error: "not_room_creator" });
      expect(await r.close("zzz", ALICE)).toEqual({ ok: false, error: "room_not_found" });
      const closed = await r.close("a", ALICE);
      expect(closed.ok).toBe(true);
      expect(await r.get("a")).toBeUndefined();
      expect(await r.list()).toEqual([]);
      // The name is free again, with no members carried over.
      await r.create("a", BOB, 5);
      expect((await r.get("a"))?.members).toBe(0);
    });

    test("list is oldest first", async () => {
      const r = await make();
      await r.create("first", ALICE, 10);
      await r.create("second", BOB, 20);
      await r.create("third", ALICE, 30);
      await r.join("second", "n1:1", 31);
      const rooms = await r.list();
      expect(rooms.map((x) => x.name)).toEqual(["first", "second", "third"]);
      expect(rooms.map((x) => x.members)).toEqual([0, 1, 0]);
    });

    test("sweep removes rooms empty for the TTL, and only those", async () => {
      const r = await make();
      await r.create("never-joined", ALICE, 1_000);
      await r.create("busy", ALICE, 1_000);
      await r.create("left", BOB, 1_000);
      await r.join("busy", "n1:1", 1_100);
      await r.join("left", "n1:2", 1_100);
      await r.leave("left", "n1:2", 1_500);
      expect(await r.sweep(1_900, 1_000)).toEqual([]);
      expect((await r.sweep(2_000, 1_000)).sort()).toEqual(["never-joined"]);
      expect(await r.sweep(2_499, 1_000)).toEqual([]);
      expect(await r.sweep(2_500, 1_000)).toEqual(["left"]);
      expect((await r.list()).map((x) => x.name)).toEqual(["busy"]);
      // Removal frees the creator's slot too.
      const one = await make({ maxRooms: 10, maxRoomsPerUser: 1 });
      await one.create("x", ALICE, 0);
      await one.sweep(10_000, 1_000);
      expect((await one.create("y", ALICE, 10_001)).ok).toBe(true);
    });

    test("a room that gets a member again is not swept", async () => {
      const r = await make();
      await r.create("a", ALICE, 0);
      await r.join("a", "n1:1", 500);
      expect(await r.sweep(5_000, 1_000)).toEqual([]);
      expect((await r.get("a"))?.members).toBe(1);
    });

    test("createdAt is stored exactly; list is creation order even within one ms", async () => {
      const r = await make();
      const at = 1_764_152_400_123;
      expect((await r.create("z", ALICE, at)).ok).toBe(true);
      for (const n of ["y", "x", "w", "v"]) await r.create(n, BOB, at);
      expect(await r.get("z")).toEqual({ name: "z", creator: ALICE, createdAt: at, members: 0 });
      const rooms = await r.list();
      expect(rooms.map((x) => x.name)).toEqual(["z", "y", "x", "w", "v"]);
      expect(rooms.every((x) => x.createdAt === at)).toBe(true);
    });

    test("a leave that empties the room restarts its timer; a second leave does not", async () => {
      const r = await make();
      await r.create("a", ALICE, 0);
      await r.join("a", "n1:1", 100);
      await r.leave("a", "n1:1", 1_000);
      await r.leave("a", "n1:1", 1_800);
      expect(await r.sweep(1_999, 1_000)).toEqual([]);
      expect(await r.sweep(2_000, 1_000)).toEqual(["a"]);
    });

    test("purgeNode removes one node's members from every room, and only those", async () => {
      const r = await make();
      await r.create("a", ALICE, 0);
      await r.create("b", BOB, 0);
      await r.create("c", BOB, 0);
      await r.join("a", "n1:1", 10);
      await r.join("a", "n1:2", 10);
      await r.join("a", "n2:1", 10);
      await r.join("a", "n10:1", 10);
      await r.join("b", "n1:3", 10);
      await r.join("c", "n2:2", 10);
      expect(await r.purgeNode("n1", 1_000)).toBe(3);
      expect((await r.list()).map((x) => [x.name, x.members])).toEqual([
        ["a", 2],
        ["b", 0],
        ["c", 1],
      ]);
      expect(await r.purgeNode("n1", 1_100)).toBe(0);
      expect(await r.purgeNode("nobody", 1_100)).toBe(0);
      // "b" was left empty by the purge: its timer started then.
      expect(await r.sweep(1_999, 1_000)).toEqual([]);
      expect(await r.sweep(2_000, 1_000)).toEqual(["b"]);
      // The node's sockets may come back (a node id reused) and be purged again.
      expect((await r.join("a", "n1:1", 3_000))?.members).toBe(3);
      await r.leave("a", "n1:1", 3_001);
      await r.join("c", "n1:1", 3_002);
      expect(await r.purgeNode("n1", 3_003)).toBe(1);
      expect(await r.purgeNode("n2", 3_004)).toBe(2);
      expect((await r.list()).map((x) => [x.name, x.members])).toEqual([
        ["a", 1],
        ["c", 0],
      ]);
      // Closing and sweeping rooms with members of a node leave nothing behind for a purge.
      await r.join("a", "n3:1", 3_005);
      await r.join("c", "n3:2", 3_005);
      expect((await r.close("a", ALICE)).ok).toBe(true);
      await r.leave("c", "n3:2", 3_006);
      expect(await r.sweep(10_000, 1_000)).toEqual(["c"]);
      expect(await r.purgeNode("n3", 10_001)).toBe(0);
    });

    test("two nodes: members joined through one are counted through the other", async () => {
      const [a, b] = await makePair();
      await a.create("lobby", ALICE, 1);
      expect((await a.join("lobby", "n1:1", 2))?.members).toBe(1);
      expect((await b.join("lobby", "n2:1", 2))?.members).toBe(2);
      expect((await b.join("lobby", "n1:1", 2))?.members).toBe(2);
      expect(await b.get("lobby")).toEqual({
        name: "lobby",
        creator: ALICE,
        createdAt: 1,
        members: 2,
      });
      expect((await b.list()).map((x) => x.members)).toEqual([2]);
      await b.leave("lobby", "n1:1", 3);
      expect((await a.get("lobby"))?.members).toBe(1);
      expect(await a.purgeNode("n2", 4)).toBe(1);
      expect((await b.get("lobby"))?.members).toBe(0);
      expect(await b.create("lobby", BOB, 5)).toEqual({ ok: false, error: "room_exists" });
    });

    test("two nodes racing to create one name: exactly one wins", async () => {
      const [a, b] = await makePair();
      const results = await Promise.all(
        Array.from({ length: 20 }, (_, i) =>
          (i % 2 === 0 ? a : b).create("contested", i % 4 < 2 ? ALICE : BOB, 100 + i),
        ),
      );
      const won = results.filter((x) => x.ok);
      expect(won).toHaveLength(1);
      expect(results.filter((x) => !x.ok && x.error === "room_exists")).toHaveLength(19);
      expect(await a.list()).toEqual(await b.list());
      expect((await b.list()).map((x) => x.name)).toEqual(["contested"]);
    });

    test("two nodes: the limits hold across them, also when racing", async () => {
      const [a, b] = await makePair({ maxRooms: 3, maxRoomsPerUser: 2 });
      expect((await a.create("a1", ALICE, 1)).ok).toBe(true);
      expect((await b.create("b1", ALICE, 2)).ok).toBe(true);
      expect(await a.create("a2", ALICE, 3)).toEqual({ ok: false, error: "max_rooms_per_user" });
      expect(await b.create("b2", ALICE, 3)).toEqual({ ok: false, error: "max_rooms_per_user" });
      expect((await b.create("b3", BOB, 4)).ok).toBe(true);
      expect(await a.create("a4", BOB, 5)).toEqual({ ok: false, error: "max_rooms" });
      expect(await b.create("a1", BOB, 5)).toEqual({ ok: false, error: "room_exists" });
      // A slot freed on one node is free on the other.
      expect((await b.close("a1", ALICE)).ok).toBe(true);
      expect((await a.create("a5", ALICE, 6)).ok).toBe(true);

      const [c, d] = await makePair({ maxRooms: 5, maxRoomsPerUser: 3 });
      const perUser = await Promise.all(
        Array.from({ length: 12 }, (_, i) => (i % 2 === 0 ? c : d).create(`u${i}`, ALICE, i)),
      );
      expect(perUser.filter((x) => x.ok)).toHaveLength(3);
      const total = await Promise.all(
        Array.from({ length: 12 }, (_, i) => (i % 2 === 0 ? d : c).create(`t${i}`, BOB, i)),
      );
      expect(total.filter((x) => x.ok)).toHaveLength(2);
      expect(total.filter((x) => !x.ok && x.error === "max_rooms")).toHaveLength(10);
      expect(await c.list()).toHaveLength(5);
    });

    test("two nodes racing to close one room: one close succeeds", async () => {
      const [a, b] = await makePair({ maxRooms: 10, maxRoomsPerUser: 1 });
      await a.create("x", ALICE, 1);
      await b.join("x", "n2:1", 2);
      const results = await Promise.all([a.close("x", ALICE), b.close("x", ALICE)]);
      expect(results.filter((x) => x.ok)).toHaveLength(1);
      expect(results.filter((x) => !x.ok && x.error === "room_not_found")).toHaveLength(1);
      expect(results.find((x) => x.ok)).toEqual({
        ok: true,
        room: { name: "x", creator: ALICE, createdAt: 1, members: 1 },
      });
      // The creator's one slot is free again, and one new room takes it.
      expect((await b.create("y", ALICE, 3)).ok).toBe(true);
      expect(await a.create("z", ALICE, 3)).toEqual({ ok: false, error: "max_rooms_per_user" });
    });

    test("two nodes sweeping at once: each room is removed by exactly one of them", async () => {
      const [a, b] = await makePair();
      const names = Array.from({ length: 30 }, (_, i) => `r${i}`);
      for (const [i, n] of names.entries()) await (i % 2 === 0 ? a : b).create(n, `user-${i}`, i);
      await a.create("kept", ALICE, 0);
      await b.join("kept", "n2:1", 1);
      const sweeps = await Promise.all(
        Array.from({ length: 8 }, (_, i) => (i % 2 === 0 ? a : b).sweep(100 + i, 30)),
      );
      const all = sweeps.flat();
      expect(all.toSorted()).toEqual(names.toSorted());
      expect(new Set(all).size).toBe(all.length);
      expect((await a.list()).map((x) => x.name)).toEqual(["kept"]);
      // Every creator's slot came back.
      expect((await b.create("again", "user-0", 100)).ok).toBe(true);
    });
  });
}
