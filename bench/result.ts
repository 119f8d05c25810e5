// The shape of one run's results (bench/results/<timestamp>.json).

import type { FanoutScenario, NoisyScenario } from "./paired.ts";
import type { Machine } from "./proc.ts";
import type { Profile } from "./profiles.ts";
import type { ChurnScenario, ConnectionsResult } from "./scenarios.ts";

export interface ServerResults {
  connections: ConnectionsResult;
  fanout: FanoutScenario;
  churn: ChurnScenario;
  noisy: NoisyScenario;
}

export interface TargetCheck {
  name: string;
  target: string;
  measured: string;
  /** null: not applicable to this profile. */
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

export interface BenchResult {
  version: 1;
  profile: Profile["name"];
  startedAt: string;
  durationSec: number;
  machine: Machine;
  /** Server pinned to `serverCore`, clients to `clientCore` (taskset), when `pinned`. */
  pinned: boolean;
  serverCore: number;
  clientCore: number;
  settings: Profile;
  kabar: ServerResults;
  baseline: ServerResults;
  targets: TargetCheck[];
  background: QuietWait[];
}
