// The user store: one small interface, SQLite (embedded default) or PostgreSQL (shared by the
// nodes of a cluster). Emails are stored lower-cased; uniqueness is case-insensitive.

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

/**
 * The database cannot be reached right now (refused, dropped or timed-out connection, server
 * shutting down). Callers answer "try again later" (REST 503); the store recovers by itself
 * once the database is back.
 */
export class StoreUnavailableError extends Error {
  override readonly name = "StoreUnavailableError";
  constructor(message = "The user database is unavailable", options?: { cause?: unknown }) {
    super(message, options);
  }
}

/** Every async method may reject with StoreUnavailableError while the database is unreachable. */
export interface UserStore {
  /**
   * The user without its password hash (what the WebSocket upgrade, the REST user routes and the
   * name lookups need): the in-memory copy never holds a hash, so a heap dump of a node holds
   * none of its connected users' hashes. The login reads the hash with `getByEmail`.
   */
  getById(id: string): Promise<User | undefined>;
  /**
   * The user, when the store can answer from memory right now with what `getById` would
   * return; undefined means "ask getById". Lets a WebSocket upgrade skip an async hop.
   * Changes made through this store keep the cache in step; changes made by another process
   * (another node of a cluster) are seen only after `forget(id)`.
   */
  getCached(id: string): User | undefined;
  /**
   * Drops the in-memory copy of one user, so the next `getById` reads the database. Called when
   * another node announces that it changed or deleted that user. Unknown ids are ignored.
   */
  forget(id: string): void;
  getByEmail(email: string): Promise<UserRecord | undefined>;
  list(skip: number, limit: number): Promise<{ data: User[]; count: number }>;
  /** Throws EmailTakenError when the email exists. */
  create(user: NewUser): Promise<UserRecord>;
  /** Undefined when the id is unknown; throws EmailTakenError on a taken email. */
  update(id: string, patch: UserPatch): Promise<UserRecord | undefined>;
  delete(id: string): Promise<boolean>;
  /** Entry counts of the in-process maps behind this part (operators' `GET /ws/internals`); cheap. */
  sizes?(): Record<string, number>;
  /** Closes the database (waits for running queries briefly). */
  close(): Promise<void>;
}

export const publicUser = (u: User): User => ({
  id: u.id,
  email: u.email,
  full_name: u.full_name,
  is_active: u.is_active,
  is_superuser: u.is_superuser,
  created_at: u.created_at,
});
