// Composes Kabar: stores, registry, hub, REST routes and the WebSocket endpoint in one Elysia app.

import type { Server } from "bun";
import { Elysia } from "elysia";
import { Tokens } from "./auth.ts";
import { BrokerUnavailableError } from "./cluster/broker.ts";
import { type ClusterParts, newNodeId, openCluster } from "./cluster/open.ts";
import type { Config } from "./config.ts";
import { corsHeaders, preflight } from "./cors.ts";
import { errorText, type Logger } from "./log.ts";
import { CONTENT_TYPE as METRICS_CONTENT } from "./metrics/registry.ts";
import { apiDocs } from "./rest/api-docs.ts";
import { ClientAddress } from "./rest/client-address.ts";
import { ConnectLimit, DelayedRefusals } from "./rest/connect-limit.ts";
import { detail, HttpError, validationDetail } from "./rest/errors.ts";
import type { LoginThrottle } from "./rest/login-throttle.ts";
import { nameRoutes } from "./rest/names.ts";
import { ROUTE_DOCS } from "./rest/route-docs.ts";
import { UpgradePacer } from "./rest/upgrade-pacer.ts";
import { userRoutes } from "./rest/users.ts";
import { wsRoutes, wsUpgrade } from "./rest/ws-routes.ts";
import { RegistryUnavailableError } from "./rooms/registry.ts";
import { openUserStore } from "./users/open.ts";
import { hashPassword } from "./users/password.ts";
import { EmailTakenError, StoreUnavailableError, type UserStore } from "./users/store.ts";
import { webRoutes } from "./web/pages.ts";
import type { Conn } from "./ws/connection.ts";
import type { Handlers } from "./ws/handler.ts";
import { defaultHandlers } from "./ws/handlers.ts";
import { CLOSE, Hub } from "./ws/hub.ts";

export interface KabarOptions {
  log: Logger;
  /** Command handlers; defaults to `defaultHandlers()`. Add an entry to add a command. */
  handlers?: Handlers;
  users?: UserStore;
  /** The shared parts, instead of those REDIS_URL picks (tests run nodes on one MemoryBus). */
  cluster?: Omit<ClusterParts, "close">;
  /** Login failure throttle (tests inject one with a fake clock); the fixed limits otherwise. */
  loginThrottle?: LoginThrottle;
}

export interface Kabar {
  app: ReturnType<typeof buildApp>;
  hub: Hub;
  users: UserStore;
  /**
   * Listens on config.host:config.port (0 = any free port); throws when the port is taken.
   * `reusePort` (SO_REUSEPORT) only for workers sharing one port (src/workers.ts).
   */
  listen(options?: { reusePort?: boolean }): Server<Conn>;
  /** Graceful stop: no new connections, every socket closed with 1001, stores closed. */
  stop(timeoutMs?: number): Promise<void>;
}

/** Request bodies over this size are refused by Bun itself (413, empty body) before they are read. */
export const MAX_BODY_BYTES = 1_048_576;

function buildApp(
  config: Config,
  log: Logger,
  deps: Parameters<typeof userRoutes>[0],
  handlers: Handlers,
) {
  const cors = config.corsOrigins;
  const upgrade = wsUpgrade(deps);
  // Prometheus scrape of this node; no auth (restrict it at the proxy: README, "Metrics").
  const metrics = () =>
    new Response(deps.hub.metrics.render(), { headers: { "content-type": METRICS_CONTENT } });
  return new Elysia({
    // Elysia drops trailing-slash keys from `routes`: `/api/v1/ws/` is an Elysia route (ws-routes.ts).
    serve: {
      routes: { "/api/v1/ws": upgrade },
      // The largest body the API takes is a broadcast (10,000 characters): Bun's default of
      // 128 MB would let anyone make the server read (and argon2-hash) 128 MB per request.
      maxRequestBodySize: MAX_BODY_BYTES,
    },
    websocket: {
      maxPayloadLength: config.wsMaxPayloadBytes,
      idleTimeout: config.wsIdleTimeoutSeconds,
      sendPings: true,
      backpressureLimit: config.wsBackpressureLimitBytes,
      closeOnBackpressureLimit: true,
      perMessageDeflate: false,
      publishToSelf: false,
    },
  })
    .onRequest(({ request }) => {
      if (cors.length > 0 && request.method === "OPTIONS") return preflight(cors, request);
    })
    .onAfterHandle(({ request, set }) => {
      if (cors.length > 0)
        Object.assign(set.headers, corsHeaders(cors, request.headers.get("origin")));
    })
    .onError(({ code, error, request }) => {
      const headers = cors.length > 0 ? corsHeaders(cors, request.headers.get("origin")) : {};
      if (error instanceof HttpError)
        return detail(error.status, error.detail, { ...headers, ...error.headers });
      switch (code) {
        case "VALIDATION":
          return detail(422, validationDetail(error), headers);
        case "PARSE":
          return detail(422, "Malformed request body", headers);
        case "NOT_FOUND":
          return detail(404, "Not Found", headers);
        default:
          break;
      }
      if (error instanceof EmailTakenError) return detail(400, error.message, headers);
      if (
        error instanceof StoreUnavailableError ||
        error instanceof RegistryUnavailableError ||
        error instanceof BrokerUnavailableError
      ) {
        log.warn("backend unavailable", {
          path: new URL(request.url).pathname,
          error: error.message,
        });
        return detail(503, "Service temporarily unavailable", { ...headers, "retry-after": "5" });
      }
      log.error("request failed", { path: new URL(request.url).pathname, error: errorText(error) });
      return detail(500, "Internal Server Error", headers);
    })
    .use(userRoutes(deps))
    .use(nameRoutes(deps))
    .use(wsRoutes(deps))
    .get("/metrics", metrics, { detail: ROUTE_DOCS.metrics })
    .use(webRoutes())
    .use(apiDocs(handlers));
}

async function ensureFirstSuperuser(config: Config, users: UserStore, log: Logger): Promise<void> {
  if (await users.getByEmail(config.firstSuperuser)) return;
  try {
    await users.create({
      email: config.firstSuperuser,
      hashed_password: await hashPassword(config.firstSuperuserPassword),
      full_name: "Administrator",
      is_superuser: true,
    });
  } catch (e) {
    // Another node sharing the database created it first.
    if (e instanceof EmailTakenError) return;
    throw e;
  }
  log.info("first superuser created", { email: config.firstSuperuser });
}

export async function createKabar(config: Config, options: KabarOptions): Promise<Kabar> {
  const { log } = options;
  const users = options.users ?? (await openUserStore(config.databaseUrl));
  await ensureFirstSuperuser(config, users, log);
  const cluster: ClusterParts = options.cluster
    ? { ...options.cluster, close: async () => {} }
    : await openCluster(config, newNodeId()).catch(async (e) => {
        await users.close();
        throw e;
      });
  const handlers = options.handlers ?? defaultHandlers();
  const { registry } = cluster;
  const hub = new Hub(config, log, users, handlers, cluster);
  await hub.joinCluster();
  const tokens = new Tokens(config.secretKey, config.accessTokenExpireMinutes, users);
  const connectLimit = new ConnectLimit(config.connectRatePerIp);
  const refusals = new DelayedRefusals(config.connectRefusalDelayMs);
  const upgradePacer = new UpgradePacer(config.wsUpgradesPerTurn);
  const clientAddress = new ClientAddress(config.forwardedAllowIps);
  const deps = {
    config,
    log,
    users,
    tokens,
    hub,
    loginThrottle: options.loginThrottle,
    connectLimit,
    refusals,
    upgradePacer,
    clientAddress,
  };
  const app = buildApp(config, log, deps, handlers);
  let stopped = false;

  return {
    app,
    hub,
    users,
    listen(options = {}) {
      const reusePort = options.reusePort ?? false;
      app.listen({ hostname: config.host, port: config.port, reusePort });
      const server = app.server as Server<Conn> | null;
      if (!server) throw new Error("server did not start");
      hub.server = server;
      hub.start();
      log.info("listening", {
        host: config.host,
        port: server.port ?? config.port,
        node: hub.nodeId,
        cluster: hub.clustered,
      });
      return server;
    },
    async stop(timeoutMs = 3000) {
      if (stopped) return;
      stopped = true;
      hub.stop();
      const server = hub.server;
      if (server) {
        const closed = server.stop(false);
        hub.closeAll(CLOSE.goingAway, "Server shutting down");
        const timeout = new Promise<"timeout">((r) => setTimeout(() => r("timeout"), timeoutMs));
        if ((await Promise.race([closed, timeout])) === "timeout") await server.stop(true);
      }
      await hub
        .leaveCluster()
        .catch((e) => log.warn("leaving the cluster failed", { error: errorText(e) }));
      await registry.dispose();
      await hub.history.dispose();
      await cluster.close();
      await users.close();
      log.info("stopped");
    },
  };
}
