/**
 * The contract's event columns, engine-neutral: each `StoredEvent` field, its column name (snake_case,
 * `ts` for `timestamp`), its kind and, for integers, its width and bounds. Each engine derives its typed
 * column list from this one (`duckdb/schema.ts`, `clickhouse/schema.ts`), and the shared row checks
 * (`row-check.ts`) read it, so a field is added in one place.
 */
import type { StoredEvent } from './types.js';

export type ColumnKind = 'string' | 'integer' | 'boolean' | 'time' | 'json';

export interface ContractColumn {
  readonly column: string;
  readonly field: keyof StoredEvent;
  readonly kind: ColumnKind;
  /** Integers: the storage width in bits. */
  readonly bits?: 8 | 32 | 64;
  /** Integers and times: inclusive bounds. */
  readonly min?: number;
  readonly max?: number;
}

const str = (field: keyof StoredEvent, column: string): ContractColumn => ({ column, field, kind: 'string' });
const bool = (field: keyof StoredEvent, column: string): ContractColumn => ({
  column,
  field,
  kind: 'boolean',
});
const json = (field: keyof StoredEvent, column: string): ContractColumn => ({ column, field, kind: 'json' });
const BOUNDS = {
  8: [-128, 127],
  32: [-2_147_483_648, 2_147_483_647],
  64: [Number.MIN_SAFE_INTEGER, Number.MAX_SAFE_INTEGER],
} as const;
const int = (field: keyof StoredEvent, column: string, bits: 8 | 32 | 64): ContractColumn => ({
  column,
  field,
  kind: 'integer',
  bits,
  min: BOUNDS[bits][0],
  max: BOUNDS[bits][1],
});
/** Epoch milliseconds, year 1 to 9999: what a JS Date, a DuckDB TIMESTAMP and an Int64 all hold. */
const time = (field: keyof StoredEvent, column: string): ContractColumn => ({
  column,
  field,
  kind: 'time',
  min: -62_135_596_800_000,
  max: 253_402_300_799_999,
});

/** The `events` columns every engine stores and the analytics layer queries, in table order. */
export const CONTRACT_COLUMNS: readonly ContractColumn[] = Object.freeze([
  str('app', 'app'),
  str('messageId', 'message_id'),
  str('event', 'event'),
  str('installId', 'install_id'),
  str('sessionId', 'session_id'),
  int('seq', 'seq', 64),
  str('appVersion', 'app_version'),
  time('timestamp', 'ts'),
  time('receivedAt', 'received_at'),
  int('skewMs', 'skew_ms', 64),
  bool('clamped', 'clamped'),
  str('osName', 'os_name'),
  str('osVersion', 'os_version'),
  str('osBuild', 'os_build'),
  str('arch', 'arch'),
  str('platform', 'platform'),
  str('installMethod', 'install_method'),
  str('envClass', 'env_class'),
  str('ciVendor', 'ci_vendor'),
  bool('container', 'container'),
  int('wsl', 'wsl', 8),
  str('agent', 'agent'),
  str('mode', 'mode'),
  str('nodeVersion', 'node_version'),
  str('protocol', 'protocol'),
  str('library', 'library'),
  bool('newInstall', 'new_install'),
  // A count: never negative (the encoders keep it as an unsigned 32-bit sum; until 2026-11-29 a negative
  // one passed the check and became ~4.3 billion).
  { ...int('droppedBefore', 'dropped_before', 32), min: 0 },
  str('errorFingerprint', 'error_fingerprint'),
  str('errorText', 'error_text'),
  json('traits', 'traits'),
  json('extra', 'extra'),
]);
