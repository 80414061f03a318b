import { once } from 'node:events';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Command } from 'commander';
import { rephrased, TelemarkError } from '../../errors.js';
import { openDataDirStore } from '../../store/index.js';
import type { ExportOptions } from '../../store/types.js';
import { CONFIG_FLAG_HELP, DATA_FLAG_HELP, type DataDirFlags, dataDirOf } from '../data-dir.js';

const FORMATS = ['ndjson', 'csv', 'parquet'] as const;

interface ExportFlags extends DataDirFlags {
  readonly format: string;
  readonly out: string;
  readonly app?: string;
  readonly from?: string;
  readonly to?: string;
}

/** `2026-01-01` (UTC midnight), a full ISO 8601 time, or epoch milliseconds. */
function parseTime(flag: string, value: string | undefined, problems: string[]): number | undefined {
  if (value === undefined) return undefined;
  const ms = /^-?\d+$/.test(value) ? Number(value) : Date.parse(value);
  if (!Number.isFinite(ms)) {
    problems.push(
      `${flag} ${JSON.stringify(value)}: give a date (2026-01-31), an ISO time or epoch milliseconds`,
    );
    return undefined;
  }
  return ms;
}

/** Validate the flags once, reporting every problem together. */
export function exportOptionsFromFlags(flags: ExportFlags): ExportOptions {
  const problems: string[] = [];
  if (!(FORMATS as readonly string[]).includes(flags.format)) {
    problems.push(`--format ${JSON.stringify(flags.format)}: use ${FORMATS.join(', ')}`);
  }
  if (flags.out.trim() === '') problems.push('--out: give the output file');
  const from = parseTime('--from', flags.from, problems);
  const to = parseTime('--to', flags.to, problems);
  if (from !== undefined && to !== undefined && from >= to) problems.push('--from must be before --to');
  if (problems.length > 0) throw new TelemarkError('TMK_ERR_BAD_PARAMETER', problems.join('; '));
  return {
    format: flags.format as ExportOptions['format'],
    path: path.resolve(flags.out),
    ...(flags.app !== undefined ? { app: flags.app } : {}),
    ...(from !== undefined ? { from } : {}),
    ...(to !== undefined ? { to } : {}),
  };
}

/**
 * Export events from a stopped collector's data directory, opened read-only. Returns the rows written.
 * `--out -` is stdout: the stores write files (renamed into place), so the export goes to a private
 * directory first and is copied out from there.
 */
export async function exportFromDataDir(
  flags: ExportFlags,
  stdout: NodeJS.WritableStream = process.stdout,
): Promise<{ rows: number; path: string }> {
  const scratch = flags.out === '-' ? fs.mkdtempSync(path.join(os.tmpdir(), 'telemark-export-')) : undefined;
  try {
    const options = exportOptionsFromFlags(
      scratch ? { ...flags, out: path.join(scratch, `events.${flags.format}`) } : flags,
    );
    const dataDir = dataDirOf(
      flags,
      'export it with ClickHouse itself (SELECT … FORMAT Parquet), or ask the running collector: telemark query --url',
    );
    const store = await openDataDirStore(dataDir, { readOnly: true }).catch((error: unknown) => {
      throw rephrased(error, { TMK_ERR_STORE_LOCKED: 'export' });
    });
    let rows: number;
    try {
      rows = await store.exportEvents(options);
    } finally {
      await store.close();
    }
    if (!scratch) return { rows, path: options.path };
    for await (const chunk of fs.createReadStream(options.path)) {
      if (!stdout.write(chunk as Buffer)) await once(stdout, 'drain');
    }
    return { rows, path: '-' };
  } finally {
    if (scratch) fs.rmSync(scratch, { recursive: true, force: true });
  }
}

/** `telemark export --format ndjson|csv|parquet --out FILE [--app A] [--from T] [--to T] [--data DIR] [--config FILE]`. */
export function registerExportCommand(program: Command): void {
  program
    .command('export')
    .description('Export events (every stored column) from a stopped collector’s data directory, read-only.')
    .requiredOption('--format <format>', `output format: ${FORMATS.join(' | ')}`)
    .requiredOption('--out <file>', 'the file to write (replaced if it exists); - for stdout')
    .option('--app <name>', 'only this app')
    .option('--from <time>', 'only events at or after this event time (2026-01-31, ISO time or epoch ms)')
    .option('--to <time>', 'only events before this event time')
    .option('--data <dir>', `${DATA_FLAG_HELP} (the collector must be stopped)`)
    .option('--config <file>', CONFIG_FLAG_HELP)
    .action(async (flags: ExportFlags) => {
      const { rows, path: written } = await exportFromDataDir(flags);
      // With the export on stdout, the summary must not end up inside it.
      (written === '-' ? process.stderr : process.stdout).write(
        `Exported ${rows} event${rows === 1 ? '' : 's'} to ${written === '-' ? 'stdout' : written}.\n`,
      );
    });
}
