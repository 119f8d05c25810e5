// The RoomRegistry contract: every implementation (memory now, Redis with the cluster work)
// runs this same suite. Call `roomRegistryContract(name, factory)` from a *.test.ts file.
import { afterEach, describe, expect, test } from "bun:test";
import type { RoomLimits, RoomRegistry } from "../../src/rooms/registry.ts";

export type RegistryFactory = (limits: RoomLimits) => Promise<RoomRegistry>;

const LIMITS: RoomLimits = { maxRooms: 100, maxRoomsPerUser: 10 };
const ALICE = "11111111-1111-4111-8111-111111111111";
const BOB = "22222222-2222-4222-8222-222222222222";

export function roomRegistryContract(name: string, factory: RegistryFactory): void {
  describe(`RoomRegistry contract: ${name}`, () => {
    let open: RoomRegistry[] = [];
    const make = async (limits = LIMITS) => {
      const r = await factory(limits);
      open.push(r);
      return r;
    };
    afterEach(async () => {
      for (const r of open) await r.dispose();
      open = [];
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
  });
}
