// What the REST routes share: the stores, the hub, and the bearer-token check.

import { bearer, type Tokens } from "../auth.ts";
import type { Config } from "../config.ts";
import type { Logger } from "../log.ts";
import type { User, UserStore } from "../users/store.ts";
import type { Hub } from "../ws/hub.ts";
import type { ClientAddress } from "./client-address.ts";
import type { ConnectLimit, DelayedRefusals } from "./connect-limit.ts";
import { HttpError } from "./errors.ts";
import type { LoginThrottle } from "./login-throttle.ts";
import type { UpgradePacer } from "./upgrade-pacer.ts";

export interface Deps {
  config: Config;
  log: Logger;
  users: UserStore;
  tokens: Tokens;
  hub: Hub;
  /** Login failure throttle; a fresh one with the fixed limits when absent. */
  loginThrottle?: LoginThrottle;
  /** CONNECT_RATE_PER_IP: one per app, shared by both upgrade routes (`/ws` and `/ws/`). */
  connectLimit: ConnectLimit;
  /** Connect-limit 429s held before they are sent (CONNECT_REFUSAL_DELAY_MS). */
  refusals: DelayedRefusals;
  /** WS_UPGRADES_PER_TURN: one per app, shared by both upgrade routes. */
  upgradePacer: UpgradePacer;
  /** The client's address: the TCP peer, or X-Forwarded-For from a trusted proxy. */
  clientAddress: ClientAddress;
}

const UNAUTHORIZED = () =>
  new HttpError(401, "Could not validate credentials", { "www-authenticate": "Bearer" });

/** The active user behind the request's bearer token, or 401. */
export async function currentUser(deps: Deps, request: Request): Promise<User> {
  const token = bearer(request.headers.get("authorization"));
  if (!token) {
    deps.hub.metrics.authFailure("missing token");
    throw new HttpError(401, "Not authenticated", { "www-authenticate": "Bearer" });
  }
  const result = await deps.tokens.authenticate(token);
  if (!result.ok) {
    deps.hub.metrics.authFailure(result.cause);
    deps.log.info("rest auth failed", { cause: result.cause });
    throw UNAUTHORIZED();
  }
  return result.user;
}

export async function superuser(deps: Deps, request: Request): Promise<User> {
  const user = await currentUser(deps, request);
  if (!user.is_superuser) throw new HttpError(403, "The user doesn't have enough privileges");
  return user;
}
