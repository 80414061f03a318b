/**
 * Values across the DuckDB boundary: `SqlValue` parameters in, plain JSON-friendly JS values out.
 *
 * Results (documented in docs/storage.md, the same for every engine):
 * - integers → number; BIGINT/HUGEINT beyond ±2^53 → decimal string (never a bigint: results go to JSON);
 * - DOUBLE/FLOAT/DECIMAL → number; BOOLEAN → boolean; VARCHAR/UUID/ENUM → string;
 * - TIMESTAMP (any precision, with or without time zone) → ISO 8601 UTC string with milliseconds,
 *   `2025-01-02T03:04:05.678Z`; DATE → `YYYY-MM-DD`;
 * - JSON → the parsed value; LIST/ARRAY → array; STRUCT → object; MAP → `{ key, value }[]`.
 */
import {
  BIGINT,
  createDuckDBValueConverter,
  DOUBLE,
  type DuckDBDateValue,
  type DuckDBResultReader,
  type DuckDBType,
  DuckDBTypeId,
  type DuckDBValue,
  type DuckDBValueConverter,
  JSDuckDBValueConverter,
  LIST,
  listValue,
  TIMESTAMP,
  timestampValue,
  VARCHAR,
} from '@duckdb/node-api';
import { DAY_MS } from '../../time-units.js';
import type { SqlValue } from '../sql.js';

export interface BoundParams {
  readonly values: DuckDBValue[];
  /** Holes (undefined) mean "infer from the JS value", which the client library supports. */
  readonly types: DuckDBType[];
}

/** Turn rendered `SqlValue`s into DuckDB values, with explicit types where JS types are ambiguous. */
export function bindParams(params: readonly SqlValue[]): BoundParams {
  const values: DuckDBValue[] = [];
  const types: (DuckDBType | undefined)[] = [];
  for (const value of params) {
    if (value instanceof Date) {
      const ms = value.getTime();
      if (!Number.isFinite(ms)) throw new TypeError('refusing an invalid Date parameter');
      values.push(timestampValue(BigInt(ms) * 1000n));
      types.push(TIMESTAMP);
    } else if (typeof value === 'bigint') {
      values.push(value);
      types.push(BIGINT);
    } else if (typeof value === 'number') {
      if (!Number.isFinite(value)) throw new TypeError(`refusing non-finite number ${value}`);
      values.push(value);
      types.push(undefined);
    } else if (Array.isArray(value)) {
      const items = value as readonly (string | number)[];
      const numeric = items.length > 0 && items.every((v) => typeof v === 'number');
      if (!numeric && !items.every((v) => typeof v === 'string')) {
        throw new TypeError('refusing a list parameter that mixes strings and numbers');
      }
      const integral = numeric && items.every((v) => Number.isSafeInteger(v));
      values.push(listValue(items.map((v) => (integral ? BigInt(v) : v))));
      types.push(LIST(numeric ? (integral ? BIGINT : DOUBLE) : VARCHAR));
    } else {
      values.push(value as string | boolean | null);
      types.push(undefined);
    }
  }
  return { values, types: types as DuckDBType[] };
}

const pad = (n: number, width = 2) => String(n).padStart(width, '0');

/** `YYYY-MM-DD` for a day count, including years beyond JS Date's range. */
function isoDay(days: number): string {
  const date = new Date(days * DAY_MS);
  if (Number.isNaN(date.getTime())) return String(days);
  const y = date.getUTCFullYear();
  const year = y >= 0 && y <= 9999 ? pad(y, 4) : (y < 0 ? '-' : '+') + pad(Math.abs(y), 6);
  return `${year}-${pad(date.getUTCMonth() + 1)}-${pad(date.getUTCDate())}`;
}

function isoFromMillis(ms: number): string {
  const date = new Date(ms);
  return Number.isNaN(date.getTime()) ? String(ms) : date.toISOString();
}

const numberOrString = (n: bigint): number | string =>
  n >= BigInt(Number.MIN_SAFE_INTEGER) && n <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(n) : n.toString();

const base = JSDuckDBValueConverter as DuckDBValueConverter<unknown>;

/** Timestamps of every precision carry one bigint field; `units * multiplier / divisor` is epoch ms. */
const timestampConverter =
  (field: 'micros' | 'millis' | 'seconds' | 'nanos', divisor: bigint, multiplier: bigint) =>
  (value: DuckDBValue): string => {
    const units = (value as unknown as Record<string, bigint>)[field] ?? 0n;
    return isoFromMillis(Number((units * multiplier) / divisor));
  };

const converters: Partial<Record<DuckDBTypeId, DuckDBValueConverter<unknown>>> = {
  [DuckDBTypeId.BIGINT]: (v) => numberOrString(v as bigint),
  [DuckDBTypeId.UBIGINT]: (v) => numberOrString(v as bigint),
  [DuckDBTypeId.HUGEINT]: (v) => numberOrString(v as bigint),
  [DuckDBTypeId.UHUGEINT]: (v) => numberOrString(v as bigint),
  [DuckDBTypeId.BIGNUM]: (v) => numberOrString(v as bigint),
  [DuckDBTypeId.DATE]: (v) => isoDay((v as DuckDBDateValue).days),
  [DuckDBTypeId.TIMESTAMP]: timestampConverter('micros', 1000n, 1n),
  [DuckDBTypeId.TIMESTAMP_TZ]: timestampConverter('micros', 1000n, 1n),
  [DuckDBTypeId.TIMESTAMP_MS]: timestampConverter('millis', 1n, 1n),
  [DuckDBTypeId.TIMESTAMP_S]: timestampConverter('seconds', 1n, 1000n),
  [DuckDBTypeId.TIMESTAMP_NS]: timestampConverter('nanos', 1_000_000n, 1n),
  [DuckDBTypeId.VARCHAR]: (v, type) => {
    const text = String(v);
    if (type.alias !== 'JSON') return text;
    try {
      return JSON.parse(text) as unknown;
    } catch {
      return text;
    }
  },
};

const byTypeId = {} as Record<DuckDBTypeId, DuckDBValueConverter<unknown> | undefined>;
for (const id of Object.values(DuckDBTypeId)) {
  if (typeof id !== 'number') continue;
  byTypeId[id as DuckDBTypeId] = converters[id as DuckDBTypeId] ?? base;
}

/** Converts one DuckDB value (recursively) to the documented plain JS value. */
export const plainValueConverter: DuckDBValueConverter<unknown> = createDuckDBValueConverter(byTypeId);

/**
 * Rows as plain objects. Column types come from the result, not from each vector: only the result's
 * types keep the `JSON` alias that tells a JSON column from a VARCHAR one.
 */
export function plainRows(reader: DuckDBResultReader): Record<string, unknown>[] {
  const names = reader.deduplicatedColumnNames();
  const types = reader.columnTypes();
  const columns = reader.getColumns();
  const rowCount = columns[0]?.length ?? 0;
  const rows: Record<string, unknown>[] = new Array(rowCount);
  for (let r = 0; r < rowCount; r++) {
    const row: Record<string, unknown> = {};
    for (let c = 0; c < names.length; c++) {
      row[names[c]!] = plainValueConverter(columns[c]![r]!, types[c]!, plainValueConverter);
    }
    rows[r] = row;
  }
  return rows;
}
