import { type Command, Option } from 'commander';
import { createAnalytics, type RawParams, VIEW_NAMES, type ViewName } from '../../analytics/index.js';
import { FORMATS, type OutputFormat, renderView } from '../../analytics/render.js';
import { openStore } from '../../config/open-store.js';
import { loadServeConfig } from '../../config/serve-config.js';
import { rephrased, TelemarkError } from '../../errors.js';
import { initFailure } from '../../store/index.js';
import { callApi, refuseStoreFlagsWithUrl } from '../api-client.js';
import { DATA_FLAG_HELP } from '../data-dir.js';

interface QueryOptions {
  readonly app?: string;
  readonly from?: string;
  readonly to?: string;
  readonly interval?: string;
  readonly version?: string[];
  readonly os?: string[];
  readonly env?: string[];
  readonly includeCi?: boolean;
  readonly k?: string;
  readonly event?: string[];
  readonly outcome?: string;
  readonly breakdown?: string;
  readonly funnel?: string;
  readonly window?: string;
  readonly limit?: string;
  readonly dimension?: string;
  readonly weeks?: string;
  readonly fingerprint?: string;
  readonly format: OutputFormat;
  readonly url?: string;
  readonly data?: string;
  readonly config?: string;
}

/** CLI flags → the API's parameter names. Only flags the user gave are sent, so defaults live in one place. */
function toParams(options: QueryOptions): RawParams {
  const params: Record<string, string | string[]> = {};
  const scalar = [
    'app',
    'from',
    'to',
    'interval',
    'k',
    'outcome',
    'breakdown',
    'funnel',
    'window',
    'limit',
    'dimension',
    'weeks',
  ] as const;
  for (const name of scalar) if (options[name] !== undefined) params[name] = options[name];
  for (const name of ['version', 'os', 'env', 'event'] as const)
    if (options[name]?.length) params[name] = options[name];
  if (options.includeCi) params.includeCi = '1';
  return params;
}

/** In this process, on a data directory whose collector is stopped (read-only; a running one holds the lock). */
async function viaDataDir(options: QueryOptions, view: ViewName, params: RawParams): Promise<unknown> {
  // Without --data, the data directory is the one `serve` with the same --config uses: the file's.
  const config = loadServeConfig({
    ...(options.config ? { file: options.config } : {}),
    flags: options.data !== undefined ? { data: options.data } : {},
  });
  const store = openStore(config, { readOnly: true });
  try {
    try {
      await store.init();
    } catch (error) {
      // "Locked by a running collector" names its own fix (--url): surface it, not the generic init error.
      throw rephrased(initFailure(error), { TMK_ERR_STORE_LOCKED: 'query' });
    }
    const analytics = createAnalytics({ store, registry: config.registry, readOnly: true });
    return options.fingerprint !== undefined
      ? await analytics.errorDetail(options.fingerprint, params)
      : await analytics.run(view, params);
  } finally {
    await store.close();
  }
}

export async function runQuery(
  view: string,
  options: QueryOptions,
  out: NodeJS.WritableStream = process.stdout,
): Promise<void> {
  if (!(VIEW_NAMES as readonly string[]).includes(view))
    throw new TelemarkError(
      'TMK_ERR_UNKNOWN_VIEW',
      `${JSON.stringify(view)}; views: ${VIEW_NAMES.join(', ')}`,
    );
  if (options.fingerprint !== undefined && view !== 'errors')
    throw new TelemarkError('TMK_ERR_BAD_PARAMETER', '--fingerprint: only with the errors view');
  if (options.url !== undefined)
    refuseStoreFlagsWithUrl((['data', 'config'] as const).filter((k) => options[k] !== undefined));
  const params = toParams(options);
  const response = options.url
    ? // Through the running collector's API: the same views, parameters and errors as the dashboard sees.
      await callApi(
        options.url,
        options.fingerprint !== undefined ? `errors/${encodeURIComponent(options.fingerprint)}` : view,
        { params },
      )
    : await viaDataDir(options, view as ViewName, params);
  let text: string;
  try {
    text = renderView(options.fingerprint !== undefined ? 'error' : view, response, options.format);
  } catch (error) {
    // An answer of another shape than the view's (another server at --url; until 2026-11-29 reported
    // as a bug, TMK_ERR_INTERNAL). What this process computed itself is ours: a failure there stays a bug.
    if (options.url === undefined) throw error;
    throw new TelemarkError(
      'TMK_ERR_API_UNREACHABLE',
      `${options.url} (it answered ${view} with something that is not the ${view} view's answer: another server, or a collector of another version)`,
      { cause: error },
    );
  }
  out.write(`${text}\n`);
}

const collect = (value: string, previous: string[] = []): string[] => [...previous, value];

export function registerQueryCommand(program: Command): void {
  program
    .command('query')
    .description(
      'Answer a question from the analytics views, against a running collector (--url, token in TELEMARK_ADMIN_TOKEN) or a stopped one’s data directory (--data).',
    )
    .argument('<view>', VIEW_NAMES.join(' | '))
    .requiredOption('--app <name>', 'registered app')
    .option('--from <date>', 'start, ISO date or date-time (default: 30 UTC calendar days up to --to)')
    .option('--to <date>', 'end, exclusive (default: now)')
    .option('--interval <interval>', 'hour | day | week | month (default: day)')
    .option('--version <version>', 'app version (repeatable)', collect)
    .option('--os <name>', 'OS name (repeatable)', collect)
    .option('--env <class>', 'environment class (repeatable); default: all but ci and test', collect)
    .option('--include-ci', 'keep CI and test runs in')
    .option('--k <n>', 'fold breakdown rows under n installs into "other" (default: 5)')
    .option('--event <name>', 'trends, errors, breakdown: only this event (repeatable)', collect)
    .option('--outcome <name>', 'outcomes: one outcome of the catalog')
    .option('--breakdown <dimension>', 'outcomes: break down by a context dimension')
    .option('--funnel <name>', 'funnel: which funnel of the catalog (default: the first)')
    .option('--window <seconds>', 'funnel: conversion window (default: the catalog’s)')
    .option('--limit <n>', 'errors: how many fingerprints (default: 20), or samples with --fingerprint')
    .option(
      '--dimension <dimension>',
      'breakdown: os_name, os_version, app_version, arch, install_method, env_class, ci_vendor, platform, mode, or trait:<name> (an enum, boolean or enumList trait of --event, or of the catalog)',
    )
    .option('--weeks <n>', 'retention: weeks after the cohort week (default: 8)')
    .option('--fingerprint <fp>', 'errors: drill into one error fingerprint')
    .addOption(new Option('--format <format>', 'output format').choices(FORMATS).default('table'))
    .option('--url <url>', 'a running collector, e.g. http://127.0.0.1:8787')
    .option('--data <dir>', DATA_FLAG_HELP)
    .option('--config <file>', 'the collector’s JSON config (apps and catalogs, data directory)')
    .action(async (view: string, options: QueryOptions) => {
      await runQuery(view, options);
    });
}
