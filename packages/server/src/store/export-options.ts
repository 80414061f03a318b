/** The checks every engine's `exportEvents` runs first, so both refuse the same options the same way. */
import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { syncDirectorySync, syncPathSync } from '../directories.js';
import { TelemarkError } from '../errors.js';
import type { ExportOptions } from './types.js';

/**
 * The start of the names of this process's temporary files for an export to `target`: beside it (so the
 * rename into place is atomic), hidden, and this process's, so that a signal's cleanup (`telemark
 * export`) finds them and no other export's.
 */
export const exportTemporaryPrefix = (target: string): string =>
  path.join(path.dirname(target), `.${path.basename(target)}.${process.pid}.`);

/** A temporary file of an export to `target`: `what` it holds (`partial`: the export before its rename). */
export const exportTemporary = (target: string, what = 'partial'): string =>
  `${exportTemporaryPrefix(target)}${what}-${randomUUID().slice(0, 8)}`;

/**
 * Put a finished export (`temporary`, from `exportTemporary`) in place at `target`. Not every writer
 * syncs its file (DuckDB's COPY does not, on either engine: the DuckDB store's export, and ClickHouse's
 * Parquet): synced before the rename, and the rename with its directory, a file under the target's name
 * is whole after a power loss too, not there empty or cut short (until 2026-11-29 it could be; the fix
 * first made for DuckDB alone left ClickHouse's exports exposed). A target to be written into rather
 * than replaced (stdout, a FIFO, a device, a link) never comes here: `telemark export` gives the store a
 * file of its own and copies it out (`writtenInto`, cli/commands/export.ts).
 */
export function publishExport(temporary: string, target: string): void {
  syncPathSync(temporary);
  fs.renameSync(temporary, target);
  syncDirectorySync(path.dirname(target));
}

/** Bounds beyond year 9999 are clamped there: they select everything on that side. */
const END_OF_TIME = 253_402_300_800_000;

/**
 * First characters that make a spreadsheet read a CSV cell as a formula (OWASP's list). Text cells that
 * start with one get a leading `'`, which spreadsheets show as text: the text came from clients, and a
 * `=HYPERLINK(…)` install id must not run on the operator's machine. NDJSON and Parquet keep it as sent.
 */
export const CSV_FORMULA_STARTS = ['=', '+', '-', '@', '\t', '\r'] as const;

export const csvSafeText = (text: string): string =>
  (CSV_FORMULA_STARTS as readonly string[]).includes(text.charAt(0)) ? `'${text}` : text;

export interface ExportBound {
  readonly op: '>=' | '<';
  /** Epoch ms, whole. */
  readonly ms: number;
}

/** Throws TMK_ERR_BAD_PARAMETER for an unknown format, a relative path or a bound that is not a number. */
export function checkExportOptions(options: ExportOptions): readonly ExportBound[] {
  if (options.format !== 'ndjson' && options.format !== 'csv' && options.format !== 'parquet') {
    throw new TelemarkError(
      'TMK_ERR_BAD_PARAMETER',
      `format must be ndjson, csv or parquet, got ${options.format}`,
    );
  }
  if (typeof options.path !== 'string' || !path.isAbsolute(options.path)) {
    throw new TelemarkError('TMK_ERR_BAD_PARAMETER', `export path must be absolute, got ${options.path}`);
  }
  const bounds: ExportBound[] = [];
  for (const [bound, op] of [
    [options.from, '>='],
    [options.to, '<'],
  ] as const) {
    if (bound === undefined) continue;
    if (!Number.isFinite(bound))
      throw new TelemarkError('TMK_ERR_BAD_PARAMETER', 'export bounds must be epoch ms');
    bounds.push({ op, ms: Math.round(Math.max(Math.min(bound, END_OF_TIME), -END_OF_TIME)) });
  }
  return bounds;
}
