// The TokenLeases contract (the cluster's shared rate-limit buckets): memory and Redis run this
// same suite. Times are real (Redis refills by its own clock); rates are chosen so that the
// milliseconds a test takes cannot refill a whole token where none may appear.
import { afterEach, describe, expect, test } from "bun:test";
import type { TokenLeases } from "../../src/cluster/leases.ts";

export function tokenLeasesContract(name: string, open: () => Promise<TokenLeases>): void {
  describe(`TokenLeases contract: ${name}`, () => {
    let opened: TokenLeases[] = [];
    const make = async () => {
      const l = await open();
      opened.push(l);
      return l;
    };
    afterEach(async () => {
      for (const l of opened) await l.dispose();
      opened = [];
    });
    const user = () => crypto.randomUUID();

    test("a new bucket is full; grants are whole tokens up to what is left", async () => {
      const l = await make();
      const u = user();
      expect((await l.lease(u, 4, 10, 0.001)).granted).toBe(4);
      expect((await l.lease(u, 4, 10, 0.001)).granted).toBe(4);
      const last = await l.lease(u, 4, 10, 0.001);
      expect(last.granted).toBe(2);
      expect(last.left).toBeLessThan(1);
      const none = await l.lease(u, 1, 10, 0.001);
      expect(none).toEqual({ granted: 0, left: expect.any(Number) });
      expect(none.left).toBeLessThan(1);
      // Buckets are per user.
      expect((await l.lease(user(), 10, 10, 0.001)).granted).toBe(10);
    });

    test("the bucket refills at the given rate, never above capacity", async () => {
      const l = await make();
      const u = user();
      expect((await l.lease(u, 5, 5, 50)).granted).toBe(5);
      await Bun.sleep(120);
      // 50 tokens/s for >= 120 ms: at least 5 again, capped at capacity 5.
      expect((await l.lease(u, 100, 5, 50)).granted).toBe(5);
    });

    test("given-back tokens can be leased again, capped at capacity", async () => {
      const l = await make();
      const u = user();
      await l.lease(u, 6, 6, 0.001);
      await l.giveBack(u, 4, 6, 0.001);
      expect((await l.lease(u, 10, 6, 0.001)).granted).toBe(4);
      await l.giveBack(u, 100, 6, 0.001);
      expect((await l.lease(u, 10, 6, 0.001)).granted).toBe(6);
    });

    test("concurrent leases from two nodes never hand out more than the bucket holds", async () => {
      const a = await make();
      const b = await make();
      const u = user();
      const grants = await Promise.all(
        Array.from({ length: 40 }, (_, i) => (i % 2 ? a : b).lease(u, 3, 50, 0.001)),
      );
      expect(grants.reduce((s, g) => s + g.granted, 0)).toBe(50);
    });
  });
}
