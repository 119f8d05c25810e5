// Kabar's metrics on one node (each worker of `--workers` has its own): what the hot path counts
// (plain increments on objects resolved once, at wiring time) and what is read at scrape time.
// `GET /metrics` renders them (src/app.ts); the README's "Metrics" section lists them.
import pkg from "../../package.json" with { type: "json" };
import { type Counter, type Histogram, Registry } from "./registry.ts";

/** Kabar's version (package.json), the `version` label of `kabar_info`. */
export const VERSION: string = pkg.version;

/** Handler latency bounds, seconds: 10 µs … 2.5 s (sync handlers take µs, async ones ms). */
export const DURATION_BUCKETS = [
  0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
  0.25, 0.5, 1, 2.5,
] as const;

/** Codes of frames refused before any handler runs (the error event's `code`, or `binary`). */
export type RejectCode = "binary" | "invalid_json" | "invalid_message" | "unknown_type";
const REJECT_CODES: readonly RejectCode[] = [
  "binary",
  "invalid_json",
  "invalid_message",
  "unknown_type",
];

/** Close codes with a label of their own in kabar_closes_total; any other is `other`. */
const CLOSE_CODES = [1000, 1001, 1005, 1006, 1008, 1009, 1011] as const;

/** Bounded `cause` labels of auth failures (the causes src/auth.ts gives, snake_cased). */
export function causeLabel(cause: string): string {
  if (cause.startsWith("unsupported alg")) return "unsupported_alg";
  return CAUSES[cause] ?? "other";
}
const CAUSES: Record<string, string> = {
  "missing token": "missing_token",
  "malformed token": "malformed_token",
  "unsupported crit header": "unsupported_crit",
  "bad signature": "bad_signature",
  "token has no exp": "no_exp",
  "token expired": "expired",
  "token not yet valid": "not_yet_valid",
  "token has no sub": "no_sub",
  "sub is not a UUID": "bad_sub",
  "unknown user": "unknown_user",
  "inactive user": "inactive_user",
  "wrong password": "wrong_password",
  "unknown email": "unknown_email",
};

/** One command type's counters, resolved once per type (src/ws/hub.ts `command`). */
export interface CommandMetrics {
  frames: Counter;
  duration: Histogram;
}

/** What the metrics read from the node at scrape time. */
export interface MetricsSources {
  version: string;
  nodeId: string;
  connections(): number;
  rooms(): number;
  /** 1 when Redis is reachable, 0 when not; null on one node (no sample). */
  redisUp(): number | null;
}

export class Metrics {
  readonly registry = new Registry();
  private readonly framesIn = this.registry.labelledCounter(
    "kabar_frames_in_total",
    "Client frames accepted (valid, within the rate limit) by command type.",
    "type",
  );
  private readonly rejectedBy = this.registry.labelledCounter(
    "kabar_frames_rejected_total",
    "Client frames refused before a handler ran, by error code (binary, invalid_json, invalid_message, unknown_type).",
    "code",
  );
  readonly rejected: Record<RejectCode, Counter>;
  /** Frames handed to sockets: each send, and each topic publish times the topic's subscribers. */
  readonly framesOut = this.registry.counter(
    "kabar_frames_out_total",
    "Frames handed to sockets: one per send, subscriber count per topic publish.",
  );
  readonly rateLimited = this.registry.counter(
    "kabar_rate_limited_total",
    "Client frames refused by the per-user rate limit (each answered with rate_limited).",
  );
  private readonly authFailuresBy = this.registry.labelledCounter(
    "kabar_auth_failures_total",
    "Authentication failures (WebSocket upgrades and REST bearer tokens) by cause.",
    "cause",
  );
  private readonly closesBy = this.registry.labelledCounter(
    "kabar_closes_total",
    "WebSocket closes by close code. 1006 (no close handshake) is how Bun reports its own close of a socket over WS_BACKPRESSURE_LIMIT_BYTES, and also a peer that vanished without a close frame.",
    "code",
  );
  private readonly closes = new Map<number, Counter>();
  private readonly otherCloses: Counter;
  private readonly durationOf = this.registry.labelledHistogram(
    "kabar_handler_duration_seconds",
    "Command handler time by command type, from the handler's start to its end (async handlers: until their promise settles).",
    "type",
    DURATION_BUCKETS,
  );
  /** Last drift of the event-loop sampler, seconds. */
  lag = 0;
  private sampler: ReturnType<typeof setInterval> | null = null;

  constructor(src: MetricsSources) {
    const r = this.registry;
    this.rejected = {} as Record<RejectCode, Counter>;
    for (const code of REJECT_CODES) this.rejected[code] = this.rejectedBy(code);
    for (const code of CLOSE_CODES) this.closes.set(code, this.closesBy(String(code)));
    this.otherCloses = this.closesBy("other");
    r.gauge("kabar_connections", "Live WebSocket connections on this node.", src.connections);
    r.gauge("kabar_rooms", "Rooms with at least one socket on this node.", src.rooms);
    r.gauge(
      "kabar_event_loop_lag_seconds",
      "Event-loop delay: how late the last 500 ms sampler tick fired.",
      () => this.lag,
    );
    r.gauge("process_resident_memory_bytes", "Resident memory size in bytes.", () =>
      process.memoryUsage.rss(),
    );
    r.gauge("kabar_info", "Kabar build and node (always 1).", () => 1, {
      version: src.version,
      node: src.nodeId,
    });
    r.gauge("kabar_redis_up", "Cluster mode: 1 when Redis is reachable, else 0.", src.redisUp);
  }

  /** The counters of one command type (made on first use, once per type). */
  command(type: string): CommandMetrics {
    return { frames: this.framesIn(type), duration: this.durationOf(type) };
  }

  /** A socket closed with `code` (once per socket; not on the message path). */
  closed(code: number): void {
    (this.closes.get(code) ?? this.otherCloses).value++;
  }

  authFailure(cause: string): void {
    this.authFailuresBy(causeLabel(cause)).value++;
  }

  /** Starts the event-loop lag sampler (unref'd: it never keeps the process alive). */
  start(everyMs = 500): void {
    if (this.sampler !== null) return;
    let expected = performance.now() + everyMs;
    this.sampler = setInterval(() => {
      const now = performance.now();
      this.lag = Math.max(0, now - expected) / 1000;
      expected = now + everyMs;
    }, everyMs);
    this.sampler.unref?.();
  }

  stop(): void {
    if (this.sampler !== null) clearInterval(this.sampler);
    this.sampler = null;
  }

  render(): string {
    return this.registry.render();
  }
}
