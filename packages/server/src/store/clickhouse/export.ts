/**
 * `exportEvents` for ClickHouse: rows stream out of the `events` view and are written in the same shapes
 * the DuckDB store writes — NDJSON and CSV with ISO 8601 UTC times, booleans as true/false, traits and
 * extra as JSON — and Parquet through an in-memory DuckDB (ClickHouse 18.16 has no Parquet output).
 * The file is written beside the target and put in place by a rename (`publishExport`), so a failed
 * export leaves nothing, and a finished one survives a power loss whole.
 */
import fs from 'node:fs';
import { errorFirstLine, TelemarkError } from '../../errors.js';
import { EVENT_COLUMNS as DUCKDB_COLUMNS } from '../duckdb/schema.js';
import { checkExportOptions, csvSafeText, exportTemporary, publishExport } from '../export-options.js';
import { clickhouseLiteral } from '../sql.js';
import type { ExportOptions } from '../types.js';
import { EVENT_COLUMNS } from './schema.js';

type RunQuery = (query: string) => Promise<{ stream(): AsyncIterable<readonly { json<T>(): T }[]> }>;

const iso = (ms: number) => new Date(ms).toISOString();

/** A row from ClickHouse (UInt8 booleans, Int64 times, JSON as text) in the export's shape. */
function exportRow(row: Record<string, unknown>, timesAs: 'iso' | 'ms'): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const c of EVENT_COLUMNS) {
    const v = row[c.column];
    switch (c.kind) {
      case 'boolean':
        out[c.column] = Number(v) === 1;
        break;
      case 'time':
        out[c.column] = timesAs === 'iso' ? iso(Number(v)) : Number(v);
        break;
      case 'integer':
        out[c.column] = Number(v);
        break;
      case 'json':
        out[c.column] = JSON.parse(String(v));
        break;
      default:
        out[c.column] = v;
    }
  }
  return out;
}

const csvCell = (value: unknown, kind: string): string => {
  const text =
    typeof value === 'object' && value !== null
      ? JSON.stringify(value)
      : kind === 'string'
        ? csvSafeText(String(value))
        : String(value);
  return /[",\n\r]/.test(text) ? `"${text.replaceAll('"', '""')}"` : text;
};

export async function exportEvents(
  run: RunQuery,
  label: string,
  columnList: string,
  options: ExportOptions,
): Promise<number> {
  const bounds = checkExportOptions(options);
  const where: string[] = [];
  if (options.app !== undefined) where.push(`app = ${clickhouseLiteral(options.app)}`);
  for (const { op, ms } of bounds) where.push(`ts ${op} ${ms}`);
  const query = `SELECT ${columnList} FROM events ${where.length ? `WHERE ${where.join(' AND ')}` : ''}
    ORDER BY ts, app, message_id`;
  const temporary = exportTemporary(options.path);
  const staging = options.format === 'parquet' ? exportTemporary(options.path, 'staging.ndjson') : undefined;
  try {
    const written = await writeRows(run, query, staging ?? temporary, options.format);
    if (staging) await toParquet(staging, temporary);
    publishExport(temporary, options.path);
    return written;
  } catch (error) {
    fs.rmSync(temporary, { force: true, recursive: true });
    if (error instanceof TelemarkError) throw error;
    throw new TelemarkError('TMK_ERR_EXPORT', `${label} → ${options.path}: ${errorFirstLine(error)}`, {
      cause: error,
    });
  } finally {
    if (staging) fs.rmSync(staging, { force: true });
  }
}

async function writeRows(
  run: RunQuery,
  query: string,
  file: string,
  format: ExportOptions['format'],
): Promise<number> {
  const handle = await fs.promises.open(file, 'wx');
  let written = 0;
  try {
    let buffer = format === 'csv' ? `${EVENT_COLUMNS.map((c) => c.column).join(',')}\n` : '';
    const result = await run(query);
    for await (const chunk of result.stream()) {
      for (const raw of chunk) {
        const row = exportRow(raw.json<Record<string, unknown>>(), format === 'parquet' ? 'ms' : 'iso');
        buffer +=
          format === 'csv'
            ? `${EVENT_COLUMNS.map((c) => csvCell(row[c.column], c.kind)).join(',')}\n`
            : `${JSON.stringify(row)}\n`;
        written++;
      }
      if (buffer.length > 1 << 20) {
        await handle.write(buffer);
        buffer = '';
      }
    }
    if (buffer) await handle.write(buffer);
    await handle.sync();
  } finally {
    await handle.close();
  }
  return written;
}

/** NDJSON (times in ms) → Parquet with the DuckDB store's column types (TIMESTAMP, BOOLEAN, JSON). */
async function toParquet(ndjson: string, out: string): Promise<void> {
  const { DuckDBInstance } = await import('@duckdb/node-api');
  const db = await DuckDBInstance.create(':memory:');
  try {
    const connection = await db.connect();
    try {
      // The DuckDB store's types, except times, which arrive as epoch ms and are converted below.
      const columns = DUCKDB_COLUMNS.map(
        (c) => `${c.column}: '${c.kind === 'time' ? 'BIGINT' : c.sqlType}'`,
      ).join(', ');
      const select = EVENT_COLUMNS.map((c) =>
        c.kind === 'time' ? `epoch_ms(${c.column}) AS ${c.column}` : c.column,
      ).join(', ');
      const text = (p: string) => `'${p.replaceAll("'", "''")}'`;
      await connection.run(
        `COPY (SELECT ${select} FROM read_json(${text(ndjson)}, format = 'newline_delimited', columns = {${columns}}))
         TO ${text(out)} (FORMAT parquet, COMPRESSION zstd)`,
      );
    } finally {
      connection.closeSync();
    }
  } finally {
    db.closeSync();
  }
}
