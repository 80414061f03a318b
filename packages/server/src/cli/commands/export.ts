import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import type { Command } from 'commander';
import { errorMessage, rephrased, TelemarkError } from '../../errors.js';
import { parseIsoTime } from '../../ingest/iso-time.js';
import { exportTemporaryPrefix } from '../../store/export-options.js';
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

/**
 * An ISO date (UTC midnight) or date-time (`T` or a space; UTC unless it names an offset), read by ingest's
 * parser (`parseIsoTime`: days that do not exist refused, not rolled over), or epoch ms. `Date.parse`
 * would read a time without an offset in the machine's zone. A fraction below a millisecond makes the
 * next one (the parser cuts it), so `from ≤ ts < to` holds for millisecond times either way.
 */
function parseTimeFlag(value: string): number | undefined {
  const text = value.trim();
  if (/^-?\d+$/.test(text)) return Number(text);
  const ms = parseIsoTime(text);
  if (!Number.isFinite(ms)) return undefined;
  return /\.\d{3}\d*[1-9]/.test(text) ? ms + 1 : ms;
}

/** `--from`/`--to`: see `parseTimeFlag`. */
function parseTime(flag: string, value: string | undefined, problems: string[]): number | undefined {
  if (value === undefined) return undefined;
  const ms = parseTimeFlag(value);
  if (ms === undefined || !Number.isFinite(ms)) {
    problems.push(
      `${flag} ${JSON.stringify(value)}: give a date (2026-01-31), an ISO time (2026-01-31T10:00:00Z; UTC without an offset) or epoch milliseconds`,
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
 * Copy the finished export to `out` (`end`: close it after). False when the reader went away before the
 * end (EPIPE: `| head`, a FIFO's reader closed): not a failure of the export, nor a bug, so no error; the
 * command then exits as `cat` would (SIGPIPE's 141) without a summary, which would claim rows nobody
 * read. Any other failure (a full disk behind stdout) is TMK_ERR_EXPORT; until 2026-11-29 it was
 * reported as an internal bug.
 */
async function copyOut(
  file: string,
  out: NodeJS.WritableStream,
  end: boolean,
  where: string,
): Promise<boolean> {
  try {
    await pipeline(fs.createReadStream(file), out, { end });
    return true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EPIPE')
      throw new TelemarkError('TMK_ERR_EXPORT', `writing to ${where}: ${errorMessage(error)}`, {
        cause: error,
      });
    // Writes still queued fail the same way later: they must not surface as an uncaught error.
    out.on('error', () => undefined);
    return false;
  }
}

/**
 * Whether `--out` is to be written into rather than replaced: stdout (`-`), or an existing FIFO, device,
 * socket or symbolic link (`/dev/stdout`, a link to a file kept elsewhere). A regular file, or nothing, is
 * written beside and renamed into place; until 2026-11-29 so was everything, and a FIFO or `/dev/full`
 * was replaced by a regular file while the command reported success.
 */
function writtenInto(out: string): boolean {
  if (out === '-') return true;
  try {
    const found = fs.lstatSync(out);
    return !found.isFile() && !found.isDirectory();
  } catch {
    return false;
  }
}

/**
 * While an export runs, a stop signal (Ctrl-C, SIGTERM, a hangup) would end the process before its
 * cleanup: the store's files beside the target (`exportTemporaryPrefix`), or the scratch copy of a whole
 * export (install ids) in the temporary directory, left behind. Removed here, then the signal's default.
 */
function cleanUpOnSignal(out: string, scratch: string | undefined): () => void {
  const signals: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP'];
  const onSignal = (signal: NodeJS.Signals) => {
    if (scratch) fs.rmSync(scratch, { recursive: true, force: true });
    const prefix = exportTemporaryPrefix(out);
    const dir = path.dirname(prefix);
    try {
      for (const name of fs.readdirSync(dir))
        if (path.join(dir, name).startsWith(prefix))
          fs.rmSync(path.join(dir, name), { recursive: true, force: true });
    } catch {
      // The directory is gone or unreadable: the store wrote nothing there either.
    }
    stop();
    process.kill(process.pid, signal);
  };
  const stop = () => {
    for (const signal of signals) process.off(signal, onSignal);
  };
  for (const signal of signals) process.on(signal, onSignal);
  return stop;
}

/** A path with its existing directories resolved (symlinks included); the missing rest kept as given. */
function realOrResolved(target: string): string {
  const missing: string[] = [];
  let at = path.resolve(target);
  for (;;) {
    try {
      return path.join(fs.realpathSync(at), ...missing);
    } catch {
      const parent = path.dirname(at);
      if (parent === at) return path.resolve(target);
      missing.unshift(path.basename(at));
      at = parent;
    }
  }
}

/**
 * The export replaces the file at `--out`: inside the data directory that could be the database, its WAL,
 * an intake segment or the install-id key, destroyed by a mistyped path. Refused before anything opens.
 */
function refuseInside(dataDir: string, out: string): void {
  const relative = path.relative(realOrResolved(dataDir), realOrResolved(out));
  const outside = relative === '..' || relative.startsWith(`..${path.sep}`) || path.isAbsolute(relative);
  if (!outside) {
    throw new TelemarkError(
      'TMK_ERR_BAD_PARAMETER',
      `--out ${out} is inside the data directory ${dataDir}, whose files the export would replace; write it elsewhere`,
    );
  }
}

/**
 * Export events from a stopped collector's data directory, opened read-only. Returns the rows written.
 * The stores write files (renamed into place), so an export to stdout or into an existing FIFO, device or
 * link (`writtenInto`) goes to a private directory first and is copied out from there.
 */
export async function exportFromDataDir(
  flags: ExportFlags,
  stdout: NodeJS.WritableStream = process.stdout,
): Promise<{ rows: number; path: string; readerGone?: true }> {
  const into = writtenInto(flags.out);
  const scratch = into ? fs.mkdtempSync(path.join(os.tmpdir(), 'telemark-export-')) : undefined;
  let stopCleanup: (() => void) | undefined;
  try {
    const options = exportOptionsFromFlags(
      scratch ? { ...flags, out: path.join(scratch, `events.${flags.format}`) } : flags,
    );
    stopCleanup = cleanUpOnSignal(options.path, scratch);
    const dataDir = dataDirOf(
      flags,
      'export it with ClickHouse itself (SELECT … FORMAT Parquet), or ask the running collector: telemark query --url',
    );
    if (flags.out !== '-') refuseInside(dataDir, path.resolve(flags.out));
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
    const copied =
      flags.out === '-'
        ? await copyOut(options.path, stdout, false, 'stdout')
        : await copyOut(options.path, fs.createWriteStream(flags.out), true, flags.out);
    return { rows, path: flags.out === '-' ? '-' : flags.out, ...(copied ? {} : { readerGone: true }) };
  } finally {
    stopCleanup?.();
    if (scratch) fs.rmSync(scratch, { recursive: true, force: true });
  }
}

/** `telemark export --format ndjson|csv|parquet --out FILE [--app A] [--from T] [--to T] [--data DIR] [--config FILE]`. */
export function registerExportCommand(program: Command): void {
  program
    .command('export')
    .description('Export events (every stored column) from a stopped collector’s data directory, read-only.')
    .requiredOption('--format <format>', `output format: ${FORMATS.join(' | ')}`)
    .requiredOption(
      '--out <file>',
      'the file to write (replaced if it exists; a FIFO, device or link is written into); - for stdout',
    )
    .option('--app <name>', 'only this app')
    .option(
      '--from <time>',
      'only events at or after this event time (2026-01-31, ISO time, UTC without an offset, or epoch ms)',
    )
    .option('--to <time>', 'only events before this event time')
    .option('--data <dir>', `${DATA_FLAG_HELP} (the collector must be stopped)`)
    .option('--config <file>', CONFIG_FLAG_HELP)
    .action(async (flags: ExportFlags) => {
      const { rows, path: written, readerGone } = await exportFromDataDir(flags);
      if (readerGone) {
        process.exitCode = 141;
        return;
      }
      // With the export on stdout, the summary must not end up inside it.
      (written === '-' ? process.stderr : process.stdout).write(
        `Exported ${rows} event${rows === 1 ? '' : 's'} to ${written === '-' ? 'stdout' : written}.\n`,
      );
    });
}
