// The UserStore contract: SQLite now, PostgreSQL with the cluster work; one suite for both.
import { afterEach, describe, expect, test } from "bun:test";
import { EmailTakenError, type UserRecord, type UserStore } from "../../src/users/store.ts";

export function userStoreContract(name: string, factory: () => Promise<UserStore>): void {
  describe(`UserStore contract: ${name}`, () => {
    let open: UserStore[] = [];
    const make = async () => {
      const s = await factory();
      open.push(s);
      return s;
    };
    afterEach(() => {
      for (const s of open) s.close();
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
      expect(await s.getById(u.id)).toEqual(u);
      expect(await s.getByEmail("ANN@example.COM")).toEqual(u);
      expect(await s.getById("00000000-0000-4000-8000-000000000000")).toBeUndefined();
    });

    test("email is unique, case-insensitively, on create and update", async () => {
      const s = await make();
      await s.create({ email: "a@example.com", hashed_password: "h" });
      const b = await s.create({ email: "b@example.com", hashed_password: "h" });
      expect(s.create({ email: "A@EXAMPLE.COM", hashed_password: "h" })).rejects.toBeInstanceOf(
        EmailTakenError,
      );
      expect(s.update(b.id, { email: "A@example.com" })).rejects.toBeInstanceOf(EmailTakenError);
    });

    test("update patches only the given fields; unknown id is undefined", async () => {
      const s = await make();
      const u = await s.create({ email: "c@example.com", hashed_password: "h", full_name: "C" });
      expect(await s.getById(u.id)).toEqual(u);
      const v = await s.update(u.id, { is_active: false, full_name: null });
      expect(await s.getById(u.id)).toEqual(v);
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
        if (cached !== undefined)
          expect<UserRecord | undefined>(cached).toEqual(await s.getById(id));
      };
      await agrees(u.id);
      expect(await s.getById(u.id)).toEqual(u);
      await agrees(u.id);
      await s.update(u.id, { is_active: false });
      await agrees(u.id);
      expect((await s.getById(u.id))?.is_active).toBe(false);
      await agrees(u.id);
      await s.delete(u.id);
      expect(s.getCached(u.id)).toBeUndefined();
      expect(s.getCached("00000000-0000-4000-8000-000000000000")).toBeUndefined();
    });

    test("delete removes; a second delete is false", async () => {
      const s = await make();
      const u = await s.create({ email: "d@example.com", hashed_password: "h" });
      expect(await s.getById(u.id)).toEqual(u);
      expect(await s.delete(u.id)).toBe(true);
      expect(await s.delete(u.id)).toBe(false);
      expect(await s.getById(u.id)).toBeUndefined();
    });
  });
}
