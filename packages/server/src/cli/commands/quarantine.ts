import type { Command } from 'commander';
import type { OperationState } from '../../api/answer-lines.js';
import { MAX_QUARANTINE_PAGE, parseQuarantineTime, TIME_RULE } from '../../api/quarantine-query.js';
import { openStore } from '../../config/open-store.js';
import { loadServeConfig, type ServeConfig } from '../../config/serve-config.js';
import { rephrased, TelemarkError } from '../../errors.js';
import { createEventBuilder } from '../../pipeline/event-builder.js';
import { resolveInstallIdKey } from '../../pipeline/install-id-key.js';
import { type ReplayReport, replayQuarantine } from '../../pipeline/replay.js';
import { initFailure } from '../../store/index.js';
import { newestQuarantinePage } from '../../store/quarantine-pages.js';
import type { QuarantinePosition, Store, StoredQuarantineEntry } from '../../store/types.js';
import { terminalJson, terminalText } from '../../terminal-text.js';
import { callApi, callApiStreamed, refuseStoreFlagsWithUrl } from '../api-client.js';
import { DATA_FLAG_HELP } from '../data-dir.js';
import { type StatusOutput, statusLine } from '../progress.js';

interface StoreFlags {
  readonly data?: string;
  readonly config?: string;
  readonly store?: string;
  readonly clickhouseUrl?: string;
  readonly clickhouseDatabase?: string;
  readonly clickhouseUser?: string;
  readonly clickhousePassword?: string;
}

/** The entries a command takes: `--app` (`false`: `--no-app`, entries of no app), `--reason`, `--since`, `--until`. */
interface FilterFlags {
  readonly app?: string | false;
  readonly reason?: string;
  readonly since?: string;
  readonly until?: string;
}

interface ListFlags extends StoreFlags, FilterFlags {
  /** A running collector, through its API (docs/api.md), instead of a store opened here. */
  readonly url?: string;
  readonly limit?: string;
  readonly json?: boolean;
}

interface ReplayFlags extends StoreFlags, FilterFlags {
  /** A running collector, which replays with its own catalogs (docs/api.md). */
  readonly url?: string;
}

function configFrom(flags: StoreFlags): ServeConfig {
  return loadServeConfig({
    ...(flags.config ? { file: flags.config } : {}),
    flags: {
      ...(flags.data !== undefined ? { data: flags.data } : {}),
      ...(flags.store !== undefined ? { store: flags.store } : {}),
      ...(flags.clickhouseUrl !== undefined ? { clickhouseUrl: flags.clickhouseUrl } : {}),
      ...(flags.clickhouseDatabase !== undefined ? { clickhouseDatabase: flags.clickhouseDatabase } : {}),
      ...(flags.clickhouseUser !== undefined ? { clickhouseUser: flags.clickhouseUser } : {}),
      ...(flags.clickhousePassword !== undefined ? { clickhousePassword: flags.clickhousePassword } : {}),
    },
  });
}

/**
 * Run `fn` on the configured store, opened here. `list` only inspects: read-only, so that DuckDB data of
 * a collector that did not shut down cleanly is refused (TMK_ERR_STORE_INTAKE_PENDING) rather than
 * loaded and migrated by a listing, as `export` and `query` do. `replay` writes. Neither creates a
 * store (a DuckDB file, a ClickHouse database; `openStore`'s `existingOnly`): a mistyped name is
 * TMK_ERR_STORE_NO_DATA.
 */
async function withStore<T>(
  config: ServeConfig,
  access: 'read' | 'write',
  fn: (store: Store) => Promise<T>,
): Promise<T> {
  const store = openStore(config, access === 'read' ? { readOnly: true } : { existingOnly: true });
  try {
    await store.init().catch((error: unknown) => {
      throw rephrased(initFailure(error), { TMK_ERR_STORE_LOCKED: 'url' });
    });
    return await fn(store);
  } finally {
    await store.close();
  }
}

/**
 * A cell on one line, cut to `max`. Event names and details come from what clients sent: control
 * characters (an escape sequence would drive the terminal that reads the table) are shown as `\u001b`.
 */
const oneLine = (text: string, max: number): string => {
  const flat = terminalText(text.replace(/\s+/g, ' '));
  return flat.length > max ? `${flat.slice(0, max - 1)}…` : flat;
};

/** A plain-text table of quarantine entries, one per line. */
export function formatQuarantine(entries: readonly StoredQuarantineEntry[]): string {
  if (entries.length === 0) return 'The quarantine is empty (for this filter).\n';
  const rows = entries.map((e) => [
    e.id,
    new Date(e.receivedAt).toISOString(),
    oneLine(e.app || '-', 64),
    oneLine(e.protocol, 16),
    oneLine(e.reason, 64),
    oneLine(e.event || '-', 40),
    oneLine(e.detail || '-', 80),
  ]);
  const header = ['id', 'received', 'app', 'protocol', 'reason', 'event', 'detail'];
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] as string).length)));
  const line = (cells: readonly string[]) =>
    cells
      .map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i] as number)))
      .join('  ')
      .trimEnd();
  return `${[line(header), ...rows.map(line)].join('\n')}\n`;
}

/** The store flags given (`typed` leaves out defaults), which `--url` excludes. */
const STORE_FLAGS = [
  'data',
  'config',
  'store',
  'clickhouseUrl',
  'clickhouseDatabase',
  'clickhouseUser',
  'clickhousePassword',
] as const satisfies readonly (keyof StoreFlags)[];
const storeFlagsOf = (flags: StoreFlags): string[] => STORE_FLAGS.filter((k) => flags[k] !== undefined);

interface Filter {
  readonly app?: string;
  readonly reason?: string;
  readonly since?: number;
  readonly until?: number;
}

/**
 * The filter of the flags, every problem reported at once. `--no-app` and `--app ''` select the entries
 * of no app (until 2026-11-27 `--app ''` selected every entry); `--since` / `--until` bound when an entry
 * was quarantined (its receive time: `--since` inclusive, `--until` exclusive).
 */
function filterOf(flags: FilterFlags): Filter {
  const problems: string[] = [];
  const time = (flag: string, value: string | undefined): number | undefined => {
    if (value === undefined) return undefined;
    const ms = parseQuarantineTime(value);
    if (ms === undefined) problems.push(`${flag} ${JSON.stringify(value)}: give ${TIME_RULE}`);
    return ms;
  };
  const since = time('--since', flags.since);
  const until = time('--until', flags.until);
  if (since !== undefined && until !== undefined && since >= until)
    problems.push('--since must be before --until');
  if (problems.length > 0) throw new TelemarkError('TMK_ERR_BAD_PARAMETER', problems.join('; '));
  return {
    ...(flags.app !== undefined ? { app: flags.app === false ? '' : flags.app } : {}),
    ...(flags.reason ? { reason: flags.reason } : {}),
    ...(since !== undefined ? { since } : {}),
    ...(until !== undefined ? { until } : {}),
  };
}

/** The filter as the API's query parameters (times as ISO text, which the API parses back exactly). */
const paramsOf = (filter: Filter): Record<string, string> => ({
  ...(filter.app !== undefined ? { app: filter.app } : {}),
  ...(filter.reason !== undefined ? { reason: filter.reason } : {}),
  ...(filter.since !== undefined ? { since: new Date(filter.since).toISOString() } : {}),
  ...(filter.until !== undefined ? { until: new Date(filter.until).toISOString() } : {}),
});

/**
 * The newest `limit` entries from a running collector: page after page (the API's pages hold at most
 * 1000; until 2026-11-27 a larger `--limit` was refused), each asking for what is still wanted.
 */
async function listFromApi(url: string, filter: Filter, limit: number): Promise<StoredQuarantineEntry[]> {
  const entries: StoredQuarantineEntry[] = [];
  let cursor: string | undefined;
  do {
    const answer = (await callApi(url, 'quarantine', {
      params: {
        ...paramsOf(filter),
        limit: String(Math.min(limit - entries.length, MAX_QUARANTINE_PAGE)),
        ...(cursor !== undefined ? { cursor } : {}),
      },
    })) as { entries?: StoredQuarantineEntry[]; next?: string };
    entries.push(...(answer.entries ?? []));
    cursor = answer.next;
  } while (cursor !== undefined && entries.length < limit);
  return entries;
}

export async function quarantineList(
  flags: ListFlags,
  out: NodeJS.WritableStream = process.stdout,
): Promise<void> {
  const limit = flags.limit === undefined ? 50 : Number(flags.limit);
  if (!/^\d+$/.test(flags.limit ?? '50') || !Number.isSafeInteger(limit) || limit < 1)
    throw new TelemarkError(
      'TMK_ERR_BAD_PARAMETER',
      `--limit must be a positive integer, got "${flags.limit}"`,
    );
  const filter = filterOf(flags);
  let entries: StoredQuarantineEntry[];
  if (flags.url !== undefined) {
    refuseStoreFlagsWithUrl(storeFlagsOf(flags));
    entries = await listFromApi(flags.url, filter, limit);
  } else {
    // Page after page as the API reads them (`newestQuarantinePage`: each listing bounded in receive
    // time, which one listing of `limit` entries would not be).
    entries = await withStore(configFrom(flags), 'read', async (store) => {
      const found: StoredQuarantineEntry[] = [];
      let after: QuarantinePosition | undefined;
      let span: number | undefined;
      do {
        const page = await newestQuarantinePage(
          store,
          { ...filter, ...(after !== undefined ? { after } : {}) },
          Math.min(limit - found.length, MAX_QUARANTINE_PAGE),
          span,
        );
        found.push(...page.entries);
        after = page.next;
        span = page.span;
      } while (after !== undefined && found.length < limit);
      return found;
    });
  }
  out.write(flags.json ? `${terminalJson(entries)}\n` : formatQuarantine(entries));
}

/**
 * The progress of a replay on a terminal (`progress`, stderr): where it waits, then its totals so far. A
 * replay of millions of entries takes minutes, which without it look like a hung command.
 */
function replayProgress(progress: StatusOutput) {
  const line = statusLine(progress);
  const count = (n: unknown) => (Number(n) || 0).toLocaleString('en-US');
  let runningSince = performance.now();
  const totals = (soFar: Partial<Record<keyof ReplayReport, unknown>>) => {
    const perSecond =
      (Number(soFar.examined) || 0) / Math.max(0.001, (performance.now() - runningSince) / 1000);
    line.update(
      `replay: ${count(soFar.examined)} examined · ${count(soFar.replayed)} replayed · ` +
        `${count(soFar.stillRejected)} still rejected · ${count(Math.round(perSecond))}/s`,
    );
  };
  return {
    totals,
    /** A line of the collector's streamed answer. */
    state(state: OperationState) {
      if ('progress' in state) totals(state.progress);
      else if (state.waiting === 'queued')
        line.update('replay: waiting in the collector for the replay or erasure before it…', true);
      else {
        runningSince = performance.now();
        line.update('replay: running in the collector…', true);
      }
    },
    clear: line.clear,
  };
}

export async function quarantineReplay(
  flags: ReplayFlags,
  out: NodeJS.WritableStream = process.stdout,
  progress: StatusOutput = process.stderr,
): Promise<void> {
  const filter = filterOf(flags);
  const shown = replayProgress(progress);
  let report: ReplayReport;
  try {
    if (flags.url !== undefined) {
      refuseStoreFlagsWithUrl(storeFlagsOf(flags));
      // As lines: a long replay is not cut by an idle timer on the way, and its progress can be shown.
      report = (await callApiStreamed(flags.url, 'quarantine/replay', {
        method: 'POST',
        params: paramsOf(filter),
        onState: shown.state,
      })) as ReplayReport;
    } else {
      const config = configFrom(flags);
      report = await withStore(config, 'write', (store) => {
        // Stored install ids are pseudonymised with the deployment's key, as the collector would. None is
        // made here: a collector given TELEMARK_INSTALL_ID_KEY has no key file, and one created now would be
        // another key, which a later offline delete would take for the collector's (until 2026-11-27 it was
        // made). Without a key only an entry that needs one stops the replay (kept forms hold pseudonyms).
        const installIdKey = resolveInstallIdKey(config.dataDir)?.key ?? null;
        const builder = createEventBuilder({ installIdKey });
        return replayQuarantine(store, config.registry, filter, {
          limits: config.limits,
          builder,
          onProgress: shown.totals,
        });
      });
    }
  } finally {
    shown.clear();
  }
  out.write(replaySummary(report));
}

/** What a replay did, in words; the parts a maintainer must act on said with their fix. */
export function replaySummary(report: ReplayReport): string {
  let text =
    `Examined ${report.examined} quarantined input(s): ${report.replayed} replayed ` +
    `(${report.accepted} event(s) stored, ${report.duplicate} already stored), ` +
    `${report.stillRejected} still rejected for the same reason, ${report.reasonChanged} rejected for a new reason.\n`;
  // A collector of an earlier version answers without these.
  const notReplayable = report.notReplayable ?? 0;
  const unregistered = report.unregistered ?? 0;
  if (notReplayable > 0)
    text +=
      `${notReplayable} of those still rejected are whole requests no catalog change can fix (not JSON, not gzip, ` +
      'not a batch, an unknown write key): left as they are (so is a Metriton report of an application registered only ' +
      'since it came, which kept none of its traits); see them with `telemark quarantine list --reason <code> --json`.\n';
  if (unregistered > 0)
    text +=
      `${unregistered} of those still rejected belong to apps this replay does not know ` +
      `(${(report.unregisteredApps ?? []).join(', ')}): left as they are, not judged; ` +
      "replay with the collector's --config (or --url).\n";
  return text;
}

function storeOptions(command: Command): Command {
  return command
    .option('--data <dir>', DATA_FLAG_HELP)
    .option(
      '--config <file>',
      'the collector’s JSON config file (apps and catalogs; without --data, its data directory)',
    )
    .option('--store <engine>', 'duckdb or clickhouse')
    .option('--clickhouse-url <url>', 'ClickHouse HTTP URL')
    .option('--clickhouse-database <name>', 'ClickHouse database')
    .option('--clickhouse-user <user>', 'ClickHouse user')
    .option('--clickhouse-password <password>', 'ClickHouse password');
}

/** Keep only the options the user typed, so defaults never override the config file. */
function typed<T extends object>(options: T, command: Command): T {
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(options))
    if (command.getOptionValueSource(key) !== 'default' || key === 'limit') out[key] = value;
  return out as T;
}

/**
 * `--app A` and `--no-app` set one value, the last given winning: a command given both is refused, not
 * run on one of them (until 2026-11-29 `--app hx --no-app` listed the entries of no app, and said nothing).
 */
function oneAppFilter(command: Command): Command {
  const given = new Set<string>();
  command.on('option:app', () => given.add('--app'));
  command.on('option:no-app', () => given.add('--no-app'));
  return command.hook('preAction', () => {
    if (given.size > 1)
      throw new TelemarkError(
        'TMK_ERR_BAD_PARAMETER',
        "--app and --no-app exclude each other: give --app A for one app's entries, --no-app for those of no app",
      );
  });
}

export function registerQuarantineCommands(program: Command): void {
  const quarantine = program
    .command('quarantine')
    .description(
      'Inspect and replay refused inputs (kept raw with their reason): on a running collector (--url), or in a store opened here (DuckDB: the collector stopped).',
    );
  storeOptions(
    oneAppFilter(quarantine.command('list'))
      .description('List quarantined inputs, newest first.')
      .option('--app <app>', 'only this app')
      .option(
        '--no-app',
        "only entries of no app (whole requests refused, messages without a write key); also --app ''",
      )
      .option('--reason <reason>', 'only this reason (e.g. unknown_event, TMK_ERR_BODY_UNPARSEABLE)')
      .option('--since <time>', `only entries quarantined at or after this time: ${TIME_RULE}`)
      .option('--until <time>', 'only entries quarantined before this time (same form)')
      .option('--limit <n>', 'at most this many', '50')
      .option('--json', 'print JSON (with the raw input) instead of a table')
      .option(
        '--url <url>',
        'a running collector, e.g. http://127.0.0.1:8787 (token in TELEMARK_ADMIN_TOKEN)',
      ),
  ).action(async (options: ListFlags, command: Command) => quarantineList(typed(options, command)));
  storeOptions(
    oneAppFilter(quarantine.command('replay'))
      .description('Re-validate quarantined inputs with the current catalogs; store what passes now.')
      .option('--app <app>', 'only this app')
      .option('--no-app', 'only entries of no app')
      .option('--reason <reason>', 'only this reason')
      .option('--since <time>', `only entries quarantined at or after this time: ${TIME_RULE}`)
      .option('--until <time>', 'only entries quarantined before this time (same form)')
      .option(
        '--url <url>',
        'a running collector, which replays with its own catalogs (token in TELEMARK_ADMIN_TOKEN)',
      ),
  ).action(async (options: ReplayFlags, command: Command) => quarantineReplay(typed(options, command)));
}
