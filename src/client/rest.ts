// The REST calls the web pages make, typed: login, signup, me, display names, and the superuser
// calls of the admin page. Errors become `ApiError` with the server's `detail` in words.

export interface PublicUser {
  id: string;
  email: string;
  full_name: string | null;
  is_active: boolean;
  is_superuser: boolean;
  created_at: string;
}

export interface RoomStats {
  name: string;
  creator: string;
  members: number;
  created_at: string;
}

export interface WsStats {
  total_connections: number;
  total_rooms: number;
  rooms: RoomStats[];
  nodes: Array<{ id: string; connections: number }>;
}

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly detail: string,
  ) {
    super(detail);
  }
}

/** REST calls against `base` (`http://host:port/api/v1`, or `/api/v1` in a page). */
export class Api {
  token: string | undefined;
  /** Called on every 401 (the token is no longer accepted). */
  onUnauthorized: (() => void) | undefined;

  constructor(readonly base: string) {}

  private async call<T>(
    method: string,
    path: string,
    body?: string | URLSearchParams,
    json = true,
  ): Promise<T> {
    const headers: Record<string, string> = {};
    if (this.token) headers.authorization = `Bearer ${this.token}`;
    if (body !== undefined && json) headers["content-type"] = "application/json";
    let res: Response;
    try {
      res = await fetch(`${this.base}${path}`, { method, headers, ...(body ? { body } : {}) });
    } catch {
      throw new ApiError(0, "The server cannot be reached");
    }
    const text = await res.text();
    let parsed: unknown;
    try {
      parsed = text ? JSON.parse(text) : undefined;
    } catch {
      parsed = undefined;
    }
    if (!res.ok) {
      const detail = (parsed as { detail?: unknown } | undefined)?.detail;
      if (res.status === 401) this.onUnauthorized?.();
      throw new ApiError(
        res.status,
        typeof detail === "string" ? detail : `Request failed (HTTP ${res.status})`,
      );
    }
    return parsed as T;
  }

  async login(email: string, password: string): Promise<string> {
    const form = new URLSearchParams({ username: email, password });
    const out = await this.call<{ access_token: string }>(
      "POST",
      "/login/access-token",
      form,
      false,
    );
    this.token = out.access_token;
    return out.access_token;
  }

  signup(email: string, password: string, fullName: string | null): Promise<PublicUser> {
    return this.call(
      "POST",
      "/users/signup",
      JSON.stringify({ email, password, full_name: fullName }),
    );
  }

  me(): Promise<PublicUser> {
    return this.call("GET", "/users/me");
  }

  /** Display names of user ids: full name, or a short form of the id. Unknown ids are left out. */
  async names(ids: string[]): Promise<Record<string, string>> {
    const out = await this.call<{ names: Record<string, string> }>(
      "POST",
      "/users/names",
      JSON.stringify({ ids }),
    );
    return out.names;
  }

  stats(): Promise<WsStats> {
    return this.call("GET", "/ws/stats");
  }

  users(limit = 200): Promise<{ data: PublicUser[]; count: number }> {
    return this.call("GET", `/users/?skip=0&limit=${limit}`);
  }

  createUser(fields: {
    email: string;
    password: string;
    full_name: string | null;
    is_superuser: boolean;
  }): Promise<PublicUser> {
    return this.call("POST", "/users/", JSON.stringify(fields));
  }

  setActive(id: string, active: boolean): Promise<PublicUser> {
    return this.call(
      "PATCH",
      `/users/${encodeURIComponent(id)}`,
      JSON.stringify({ is_active: active }),
    );
  }

  broadcast(content: string): Promise<{ status: string; recipients: number }> {
    return this.call("POST", "/ws/broadcast", JSON.stringify({ content }));
  }
}
