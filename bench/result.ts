// The shape of one run's results (bench/results/<timestamp>.json; the run the README cites is
// kept as bench/results/latest.json).

import type { FanoutScenario, NoisyScenario } from "./paired.ts";
import type { Machine } from "./proc.ts";
import type { Profile } from "./profiles.ts";
import type { ChurnScenario, ConnectionsResult } from "./scenarios.ts";

/**
 * One kind of server's figures. A scenario that did not run (or threw) is absent: the targets
 * count it as a miss, never as a pass.
 */
export interface ServerResults {
  /** Connections, one socket per user (the shape the targets apply to). */
  connections?: ConnectionsResult;
  /** Connections, every socket on the profile's few users (Kabar only: the baseline has no users). */
  connectionsShared?: ConnectionsResult;
  fanout?: FanoutScenario;
  churn?: ChurnScenario;
  noisy?: NoisyScenario;
}

export interface TargetCheck {
  name: string;
  target: string;
  measured: string;
  /** null: not applicable to this profile. Missing data is false, never null. */
  met: boolean | null;
}

/** How busy the rest of the machine was just before one measured phase. */
export interface QuietWait {
  phase: string;
  waitedMs: number;
  /** CPU cores other processes used in the last sample before the phase started. */
  otherCores: number;
  quiet: boolean;
}

/** A phase, or one repeat of it, that threw: its figures are missing from the run. */
export interface Failure {
  phase: string;
  error: string;
}

/** One kind of server: its environment (secrets masked) and the rows it ran. */
export interface ServerSettings {
  name: "kabar" | "kabarDefaults" | "kabarNoisy" | "baseline" | "baselineNoisy";
  program: string;
  env: Record<string, string>;
  rows: string;
}

export interface BenchResult {
  version: 2;
  profile: Profile["name"];
  startedAt: string;
  durationSec: number;
  machine: Machine;
  /** Server pinned to `serverCore`, clients to `clientCore` (taskset), when `pinned`. */
  pinned: boolean;
  serverCore: number;
  clientCore: number;
  settings: Profile;
  /** Kabar tuned for measurement (LOG_LEVEL warn, bot off, limits at 1e9): every scenario. */
  kabar: ServerResults;
  /** Kabar on its default settings: connections (one socket per user) and fan-out. */
  kabarDefaults: ServerResults;
  baseline: ServerResults;
  servers: ServerSettings[];
  failures: Failure[];
  targets: TargetCheck[];
  background: QuietWait[];
}
