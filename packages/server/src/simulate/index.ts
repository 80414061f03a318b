import type { Store } from '../store/types.js';

/**
 * CONTRACT (implementation in progress by the simulator's owner): the fleet simulator's programmatic
 * entry point, used by `telemark simulate`, `telemark serve --demo` and the benchmarks.
 */
export interface SimulateOptions {
  readonly app: string;
  readonly installs: number;
  readonly days: number;
  /** Same seed, same events (messageIds included). */
  readonly seed: number;
  /** The simulated period ends here (epoch ms). @default now */
  readonly endAt?: number;
  /** Multiplies activity per install-day, to reach large volumes with fewer installs. @default 1 */
  readonly intensity?: number;
  /** Through a running collector's HTTP ingest, or bulk-loaded into a store through the same pipeline. */
  readonly target: { readonly url: string; readonly writeKey?: string } | { readonly store: Store };
  readonly onProgress?: (done: number, total: number) => void;
}

export interface SimulateResult {
  readonly events: number;
  readonly installs: number;
  readonly days: number;
}

export async function simulate(_options: SimulateOptions): Promise<SimulateResult> {
  throw new Error('simulate() is not implemented yet');
}
