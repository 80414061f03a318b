import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
import { type Catalog, catalogFromJSON } from 'telemark';
import { prepareDataDir } from '../../config/open-store.js';
import { errorMessage, TelemarkError } from '../../errors.js';
import {
  BULK_LOAD_DUCKDB_OPTIONS,
  type SimulateResult,
  simulate,
  simulateOptionProblems,
} from '../../simulate/index.js';
import { createProgressReporter } from '../../simulate/progress.js';
import { openDataDirStore } from '../../store/index.js';
import type { Store } from '../../store/types.js';

interface SimulateCommandOptions {
  readonly app: string;
  readonly installs: string;
  readonly days: string;
  readonly to?: string;
  readonly writeKey?: string;
  readonly data?: string;
  readonly seed: string;
  readonly intensity: string;
  readonly end?: string;
  readonly catalog?: string;
  readonly concurrency: string;
  readonly json?: boolean;
}

interface ParsedOptions {
  readonly app: string;
  readonly installs: number;
  readonly days: number;
  readonly seed: number;
  readonly intensity: number;
  readonly endAt: number;
  readonly concurrency: number;
  readonly catalog?: Catalog;
  readonly target: { readonly url: string; readonly writeKey?: string } | { readonly data: string };
}

/** Checks every option and reports all problems at once. */
export function parseSimulateOptions(options: SimulateCommandOptions, now = Date.now()): ParsedOptions {
  const problems: string[] = [];
  const integer = (flag: string, text: string): number => {
    const value = Number(text);
    if (!/^-?\d+$/.test(text.trim()) || !Number.isSafeInteger(value))
      problems.push(`${flag} must be an integer (got "${text}")`);
    return value;
  };
  const installs = integer('--installs', options.installs);
  const days = integer('--days', options.days);
  const seed = integer('--seed', options.seed);
  const concurrency = integer('--concurrency', options.concurrency);
  const intensity = Number(options.intensity);
  if (!Number.isFinite(intensity)) problems.push(`--intensity must be a number (got "${options.intensity}")`);
  let endAt = now;
  if (options.end !== undefined) {
    endAt = Date.parse(options.end);
    if (!Number.isFinite(endAt))
      problems.push(`--end must be an ISO date or date-time (got "${options.end}")`);
  }
  if ((options.to === undefined) === (options.data === undefined))
    problems.push('give exactly one target: --to <collector URL> or --data <data directory>');
  if (options.writeKey !== undefined && options.to === undefined) problems.push('--write-key goes with --to');
  let catalog: Catalog | undefined;
  if (options.catalog !== undefined) {
    try {
      catalog = catalogFromJSON(JSON.parse(readFileSync(options.catalog, 'utf8')));
    } catch (error) {
      problems.push(`--catalog ${options.catalog}: ${errorMessage(error)}`);
    }
  }
  // Ranges are checked by the simulator's own rule, for the values that parsed.
  for (const problem of simulateOptionProblems(
    {
      installs: Number.isSafeInteger(installs) ? installs : 1,
      days: Number.isSafeInteger(days) ? days : 1,
      seed: Number.isSafeInteger(seed) ? seed : 0,
      intensity: Number.isFinite(intensity) ? intensity : 1,
      ...(options.to !== undefined ? { target: { url: options.to } } : {}),
    },
    'flags',
  ))
    problems.push(problem);
  if (!Number.isSafeInteger(concurrency) || concurrency < 1 || concurrency > 64)
    problems.push(`--concurrency must be an integer from 1 to 64 (got "${options.concurrency}")`);
  if (problems.length > 0) throw new TelemarkError('TMK_ERR_SIMULATE_OPTIONS', problems.join('; '));
  return {
    app: options.app,
    installs,
    days,
    seed,
    intensity,
    endAt,
    concurrency,
    ...(catalog ? { catalog } : {}),
    target:
      options.to !== undefined
        ? { url: options.to, ...(options.writeKey ? { writeKey: options.writeKey } : {}) }
        : { data: options.data as string },
  };
}

const fmt = (n: number): string => n.toLocaleString('en-US');

export function describeResult(result: SimulateResult, seed: number, where: string): string {
  const lines = [
    `simulated ${fmt(result.events)} events from ${fmt(result.installs)} installs over ${result.days} days (seed ${seed}) into ${where}`,
    `accepted ${fmt(result.accepted)}, duplicates ${fmt(result.duplicates)}, rejected ${fmt(result.rejected)}`,
  ];
  for (const r of result.rejectReasons) lines.push(`  rejected ${fmt(r.count)} × ${r.reason}`);
  return `${lines.join('\n')}\n`;
}

export async function runSimulate(
  options: SimulateCommandOptions,
  io: {
    readonly stdout: NodeJS.WritableStream;
    readonly stderr: NodeJS.WriteStream | NodeJS.WritableStream;
  } = process,
): Promise<SimulateResult> {
  const parsed = parseSimulateOptions(options);
  let store: Store | undefined;
  if ('data' in parsed.target) {
    prepareDataDir(parsed.target.data);
    // Seeding a new data directory is what `--data` is for here: the store is created when missing.
    store = await openDataDirStore(parsed.target.data, { ...BULK_LOAD_DUCKDB_OPTIONS, create: true });
  }
  const stderr = io.stderr as NodeJS.WritableStream & { isTTY?: boolean; columns?: number };
  const progress = createProgressReporter({
    isTTY: stderr.isTTY === true,
    ...(stderr.columns ? { columns: stderr.columns } : {}),
    write: (text) => stderr.write(text),
  });
  let last = { daysDone: 0, days: parsed.days, generated: 0, delivered: 0 };
  try {
    const result = await simulate({
      app: parsed.app,
      installs: parsed.installs,
      days: parsed.days,
      seed: parsed.seed,
      intensity: parsed.intensity,
      endAt: parsed.endAt,
      concurrency: parsed.concurrency,
      ...(parsed.catalog ? { catalog: parsed.catalog } : {}),
      target: store ? { store } : (parsed.target as { url: string; writeKey?: string }),
      onStats: (stats) => {
        last = { ...stats };
        progress.update(stats);
      },
    });
    progress.done(last);
    const where = 'data' in parsed.target ? parsed.target.data : parsed.target.url;
    io.stdout.write(
      options.json
        ? `${JSON.stringify({ ...result, seed: parsed.seed }, null, 2)}\n`
        : describeResult(result, parsed.seed, where),
    );
    return result;
  } finally {
    await store?.close();
  }
}

export function registerSimulateCommand(program: Command): void {
  program
    .command('simulate')
    .description(
      'Generate realistic, deterministic usage of an app (a fleet of installs over days) and deliver it through the real ingest path.',
    )
    .option('--app <name>', 'app to simulate (a built-in catalog, or give --catalog)', 'telepresence2')
    .option('--installs <n>', 'installs in the fleet', '5000')
    .option('--days <n>', 'length of the simulated period, days', '90')
    .option('--to <url>', 'a running collector: events are POSTed to <url>/v1/batch')
    .option('--write-key <key>', 'write key for --to, when the app needs one')
    .option('--data <dir>', 'bulk-load into the DuckDB store of this data directory (collector stopped)')
    .option('--seed <n>', 'PRNG seed: the same seed (and --end) gives the same events', '1')
    .option('--intensity <x>', 'multiplies sessions per active install-day', '1')
    .option('--end <date>', 'end of the simulated period (ISO date or date-time; default now)')
    .option('--catalog <file>', 'catalog JSON of the app (for apps without a built-in catalog)')
    .option('--concurrency <n>', 'requests in flight with --to', '4')
    .option('--json', 'print the result as JSON')
    .action(async (options: SimulateCommandOptions) => {
      await runSimulate(options);
    });
}
