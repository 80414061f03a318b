/**
 * @internal A long operation's answer as lines (docs/api.md, "Long operations"): what the API's replay and
 * erasure routes write and the CLI reads.
 */
import type { ReplayReport } from '../pipeline/replay.js';

/** The media type of the answer as lines: one JSON object per line. */
export const NDJSON = 'application/x-ndjson';

/** Where a replay or erasure stands, as the lines between the first and the final one say. */
export type OperationState = { readonly waiting: 'queued' | 'running' } | { readonly progress: ReplayReport };
