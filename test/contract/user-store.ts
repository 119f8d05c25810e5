// The UserStore contract: SQLite and PostgreSQL, one suite for both.
import { afterEach, describe, expect, test } from "bun:test";
import {
  EmailTakenError,
  publicUser,
  type User,
  type UserRecord,
  type UserStore,
} from "../../src/users/store.ts";

/** One empty database of the implementation under test. */
export interface UserDatabase {
  /** A new store on this database; two stores on one database are like two nodes. */
  open(): Promise<UserStore>;
}

/** What `getById` answers for a record: the user without its hash (undefined stays undefined). */
const pub = (u: UserRecord | undefined): User | undefined =>
  u === undefined ? undefined : publicUser(u);

/** `fresh()` gives an empty database for each test. */
export function userStoreContract(name: string, fresh: () => Promise<UserDatabase>): void {
  describe(`UserStore contract: ${name}`, () => {
    let open: UserStore[] = [];
    const track = async (store: Promise<UserStore>) => {
      const s = await store;
      open.push(s);
      return s;
    };
    const make = async () => track((await fresh()).open());
    /** Two stores on one database. */
    const pair = async () => {
      const db = await fresh();
      return [await track(db.open()), await track(db.open())] as const;
    };
    afterEach(async () => {
      for (const s of open) await s.close();
      open = [];
    });

    test("create assigns a UUID, lower-cases the email, keeps flags", async () => {
      const s = await make();
      const u = await s.create({
        email: "Ann@Example.com",
        hashed_password: "h",
        full_name: "Ann",
      });
      expect(u.id).toMatch(/^[0-9a-f-]{36}$/);
      expect(u.email).toBe("ann@example.com");
      expect(u.is_active).toBe(true);
      expect(u.is_superuser).toBe(false);
      expect(Number.isNaN(Date.parse(u.created_at))).toBe(false);
      expect(await s.getById(u.id)).toEqual(pub(u));
      expect(await s.getByEmail("ANN@example.COM")).toEqual(u);
      expect(await s.getById("00000000-0000-4000-8000-000000000000")).toBeUndefined();
    });

    test("email is unique, case-insensitively, on create and update", async () => {
      const s = await make();
      await s.create({ email: "a@example.com", hashed_password: "h" });
      const b = await s.create({ email: "b@example.com", hashed_password: "h" });
      await expect(
        s.create({ email: "A@EXAMPLE.COM", hashed_password: "h" }),
      ).rejects.toBeInstanceOf(EmailTakenError);
      await expect(s.update(b.id, { email: "A@example.com" })).rejects.toBeInstanceOf(
        EmailTakenError,
      );
      expect((await s.getById(b.id))?.email).toBe("b@example.com");
    });

    test("update patches only the given fields; unknown id is undefined", async () => {
      const s = await make();
      const u = await s.create({ email: "c@example.com", hashed_password: "h", full_name: "C" });
      expect(await s.getById(u.id)).toEqual(pub(u));
      const v = await s.update(u.id, { is_active: false, full_name: null });
      expect(await s.getById(u.id)).toEqual(pub(v));
      expect(v).toEqual({ ...u, is_active: false, full_name: null });
      expect(await s.update("00000000-0000-4000-8000-000000000000", { is_active: true })).toBe(
        undefined,
      );
      expect(await s.update(u.id, {})).toEqual(v);
    });

    test("list pages in creation order with a total count, without hashes", async () => {
      const s = await make();
      for (let i = 0; i < 5; i++)
        await s.create({ email: `p${i}@example.com`, hashed_password: "h" });
      const page = await s.list(1, 2);
      expect(page.count).toBe(5);
      expect(page.data.map((u) => u.email)).toEqual(["p1@example.com", "p2@example.com"]);
      expect(page.data[0]).not.toHaveProperty("hashed_password");
    });

    test("getCached answers undefined or what getById answers, never a stale user", async () => {
      const s = await make();
      const u = await s.create({ email: "k@example.com", hashed_password: "h" });
      const agrees = async (id: string) => {
        const cached = s.getCached(id);
        if (cached !== undefined) expect<User | undefined>(cached).toEqual(await s.getById(id));
      };
      await agrees(u.id);
      expect(await s.getById(u.id)).toEqual(pub(u));
      await agrees(u.id);
      await s.update(u.id, { is_active: false });
      await agrees(u.id);
      expect((await s.getById(u.id))?.is_active).toBe(false);
      await agrees(u.id);
      await s.delete(u.id);
      expect(s.getCached(u.id)).toBeUndefined();
      expect(s.getCached("00000000-0000-4000-8000-000000000000")).toBeUndefined();
    });

    test("no password hash in memory: getById and getCached answer the user without it", async () => {
      const s = await make();
      const u = await s.create({ email: "hash@example.com", hashed_password: "$argon2id$secret" });
      expect(u.hashed_password).toBe("$argon2id$secret");
      const read = await s.getById(u.id);
      expect(read).toEqual(pub(u));
      expect(read).not.toHaveProperty("hashed_password");
      expect(s.getCached(u.id) ?? {}).not.toHaveProperty("hashed_password");
      // An update answers the whole record (the hash too), and caches nothing of it.
      const v = await s.update(u.id, { full_name: "H" });
      expect(v?.hashed_password).toBe("$argon2id$secret");
      expect(await s.update(u.id, {})).toEqual(v);
      expect(await s.getById(u.id)).not.toHaveProperty("hashed_password");
      expect(s.getCached(u.id) ?? {}).not.toHaveProperty("hashed_password");
      // The login's read still has it.
      expect((await s.getByEmail("hash@example.com"))?.hashed_password).toBe("$argon2id$secret");
    });

    test("a read racing an update never leaves the old row cached", async () => {
      const s = await make();
      const u = await s.create({ email: "r@example.com", hashed_password: "h" });
      for (let i = 0; i < 10; i++) {
        s.forget(u.id);
        const [, v] = await Promise.all([
          s.getById(u.id),
          s.update(u.id, { full_name: `name ${i}` }),
        ]);
        const cached = s.getCached(u.id);
        if (cached !== undefined) expect<User | undefined>(cached).toEqual(pub(v));
        expect(await s.getById(u.id)).toEqual(pub(v));
      }
    });

    test("forget: a change made through another store shows after forget(id)", async () => {
      const [a, b] = await pair();
      const u = await a.create({ email: "f@example.com", hashed_password: "h", full_name: "F" });
      expect(await a.getById(u.id)).toEqual(pub(u));
      expect(await b.getById(u.id)).toEqual(pub(u));
      const v = await b.update(u.id, { full_name: "Changed", is_active: false });
      expect(v).toEqual({ ...u, full_name: "Changed", is_active: false });
      // A answers from its memory until told that the user changed elsewhere...
      expect(a.getCached(u.id)).toEqual(pub(u));
      expect(await a.getById(u.id)).toEqual(pub(u));
      a.forget(u.id);
      expect(a.getCached(u.id)).toBeUndefined();
      // ...then reads the database, and caches what it read.
      expect(await a.getById(u.id)).toEqual(pub(v));
      const cached = a.getCached(u.id);
      if (cached !== undefined) expect<User | undefined>(cached).toEqual(pub(v));
      expect(await b.delete(u.id)).toBe(true);
      a.forget(u.id);
      expect(await a.getById(u.id)).toBeUndefined();
      a.forget("00000000-0000-4000-8000-000000000000");
      a.forget("not-a-uuid");
    });

    test("racing creates of one email (any case) on two stores: exactly one wins", async () => {
      const [a, b] = await pair();
      for (let round = 0; round < 5; round++) {
        const email = `race${round}@example.com`;
        const results = await Promise.allSettled([
          a.create({ email, hashed_password: "h" }),
          b.create({ email: email.toUpperCase(), hashed_password: "h" }),
          a.create({ email: `Race${round}@Example.com`, hashed_password: "h" }),
        ]);
        const won = results.filter((r) => r.status === "fulfilled");
        const lost = results.filter((r) => r.status === "rejected");
        expect(won).toHaveLength(1);
        expect(lost).toHaveLength(2);
        for (const r of lost)
          expect((r as PromiseRejectedResult).reason).toBeInstanceOf(EmailTakenError);
        expect((await b.getByEmail(email))?.email).toBe(email);
      }
      expect((await a.list(0, 100)).count).toBe(5);
    });

    test("delete removes; a second delete is false", async () => {
      const s = await make();
      const u = await s.create({ email: "d@example.com", hashed_password: "h" });
      expect(await s.getById(u.id)).toEqual(pub(u));
      expect(await s.delete(u.id)).toBe(true);
      expect(await s.delete(u.id)).toBe(false);
      expect(await s.getById(u.id)).toBeUndefined();
    });
  });
}
