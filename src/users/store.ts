// The user store: one small interface, SQLite now (embedded default), PostgreSQL with the
// cluster work. Emails are stored lower-cased; uniqueness is case-insensitive.

export interface User {
  id: string;
  email: string;
  full_name: string | null;
  is_active: boolean;
  is_superuser: boolean;
  created_at: string;
}

export interface UserRecord extends User {
  hashed_password: string;
}

export interface NewUser {
  email: string;
  hashed_password: string;
  full_name?: string | null | undefined;
  is_active?: boolean | undefined;
  is_superuser?: boolean | undefined;
}

export interface UserPatch {
  email?: string | undefined;
  hashed_password?: string | undefined;
  full_name?: string | null | undefined;
  is_active?: boolean | undefined;
  is_superuser?: boolean | undefined;
}

export class EmailTakenError extends Error {
  constructor() {
    super("The user with this email already exists in the system.");
  }
}

export interface UserStore {
  getById(id: string): Promise<UserRecord | undefined>;
  /**
   * The user, when the store can answer from memory right now with what `getById` would
   * return; undefined means "ask getById". Lets a WebSocket upgrade skip an async hop.
   */
  getCached(id: string): UserRecord | undefined;
  getByEmail(email: string): Promise<UserRecord | undefined>;
  list(skip: number, limit: number): Promise<{ data: User[]; count: number }>;
  /** Throws EmailTakenError when the email exists. */
  create(user: NewUser): Promise<UserRecord>;
  /** Undefined when the id is unknown; throws EmailTakenError on a taken email. */
  update(id: string, patch: UserPatch): Promise<UserRecord | undefined>;
  delete(id: string): Promise<boolean>;
  close(): void;
}

export const publicUser = (u: UserRecord): User => ({
  id: u.id,
  email: u.email,
  full_name: u.full_name,
  is_active: u.is_active,
  is_superuser: u.is_superuser,
  created_at: u.created_at,
});
