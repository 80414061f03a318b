import type { Command } from 'commander';
import { rephrased, TelemarkError } from '../../errors.js';
import { eraseInstall, type InstallErasureReport } from '../../pipeline/erasure.js';
import { createEventBuilder } from '../../pipeline/event-builder.js';
import { resolveInstallIdKey } from '../../pipeline/install-id-key.js';
import { openDataDirStore, storeHasApp } from '../../store/index.js';
import { callApiStreamed, refuseStoreFlagsWithUrl } from '../api-client.js';
import { CONFIG_FLAG_HELP, DATA_FLAG_HELP, type DataDirFlags, dataDirOf } from '../data-dir.js';
import { type StatusOutput, statusLine } from '../progress.js';

interface DeleteFlags extends DataDirFlags {
  readonly app: string;
  readonly installId: string;
  readonly url?: string;
  readonly json?: boolean;
}

export type DeleteReport = InstallErasureReport;

/**
 * Erase one install of one app from a stopped collector's data directory. A data directory without
 * Telemark data is refused (a mistyped --data must not become a new, empty store that "erased" nothing).
 * Offline there is no registry to check the app against: when the store holds nothing of the app, the
 * erasure still runs (it may find quarantine entries of no app naming the install) and `warn` is told,
 * since the likely cause is a mistyped --app.
 */
async function deleteFromDataDir(
  app: string,
  installId: string,
  dataDir: string,
  warn: (line: string) => void,
): Promise<DeleteReport> {
  const store = await openDataDirStore(dataDir).catch((error: unknown) => {
    throw rephrased(error, { TMK_ERR_STORE_LOCKED: 'url' });
  });
  try {
    const appKnown = await storeHasApp(store, app);
    // The key pseudonyms were made with (never created here: none means none). A collector makes its key
    // file unless TELEMARK_INSTALL_ID_KEY gives the key: with neither here, an id the collector stores as
    // its pseudonym cannot be found, and "0 erased" would pass for an erasure done (until 2026-11-27 it
    // did). Without a key the builder refuses such an id, and eraseInstall maps the id before it erases.
    const key = resolveInstallIdKey(dataDir);
    const builder = createEventBuilder({ installIdKey: key?.key ?? null });
    const report = await eraseInstall(store, app, installId, builder);
    if (!appKnown)
      warn(
        `telemark: warning: no data for app ${JSON.stringify(app)} in ${dataDir} (no events, no quarantine entries): check --app\n`,
      );
    return report;
  } finally {
    await store.close();
  }
}

/**
 * Erase one install of one app through a running collector's API (any store; writes wait meanwhile).
 * The collector refuses an app it neither registers nor holds data of (`TMK_ERR_UNKNOWN_APP`).
 */
async function deleteThroughApi(
  app: string,
  installId: string,
  url: string,
  progress: StatusOutput,
): Promise<DeleteReport> {
  // As lines: an erasure behind a long replay, or a ClickHouse mutation, is not cut by an idle timer on
  // the way; a terminal is told whether it waits or runs.
  const line = statusLine(progress);
  // The collector maps the id to its pseudonym itself: only it holds the key (docs/privacy.md).
  const answer = (await callApiStreamed(url, 'erasures', {
    method: 'POST',
    body: { app, installId },
    onState: (state) => {
      if ('waiting' in state)
        line.update(
          state.waiting === 'queued'
            ? 'delete: waiting in the collector for the replay or erasure before it…'
            : 'delete: erasing in the collector…',
          true,
        );
    },
  })
    .catch((error: unknown) => {
      throw rephrased(error, { TMK_ERR_UNKNOWN_APP: 'erasure' });
    })
    .finally(line.clear)) as Partial<DeleteReport>;
  const storedAs = typeof answer.storedAs === 'string' ? answer.storedAs : undefined;
  return {
    app,
    installId,
    ...(storedAs ? { storedAs } : {}),
    events: Number(answer.events ?? 0),
    quarantine: Number(answer.quarantine ?? 0),
  };
}

/**
 * `telemark delete`: one install erased, on a running collector (`--url`) or a stopped one's data.
 * Warnings (the app has no data offline) go to `warnings`, apart from the report; so does, on a
 * terminal, whether an erasure through `--url` waits or runs.
 */
export async function deleteInstall(
  flags: DeleteFlags,
  warnings: StatusOutput = process.stderr,
): Promise<DeleteReport> {
  if (flags.app.trim() === '' || flags.installId.trim() === '') {
    throw new TelemarkError('TMK_ERR_BAD_PARAMETER', '--app and --install-id must not be empty');
  }
  if (flags.url === undefined)
    return deleteFromDataDir(flags.app, flags.installId, dataDirOf(flags, CLICKHOUSE_FIX), (line) =>
      warnings.write(line),
    );
  refuseStoreFlagsWithUrl((['data', 'config'] as const).filter((k) => flags[k] !== undefined));
  return deleteThroughApi(flags.app, flags.installId, flags.url, warnings);
}

const CLICKHOUSE_FIX = 'erase through the running collector with --url';

/** An id as typed, or quoted and escaped when it holds what a terminal would not show as itself. */
const shown = (id: string): string =>
  /^[\x21-\x7e]+$/.test(id) && !id.includes('"') ? id : JSON.stringify(id);

/** `telemark delete --app A --install-id ID [--url URL | [--data DIR] [--config FILE]]`: erasure of one install (events and quarantine). */
export function registerDeleteCommand(program: Command): void {
  program
    .command('delete')
    .description(
      'Erase every event and quarantine entry of one install of one app: through a running collector (--url, token in TELEMARK_ADMIN_TOKEN) or in a stopped one’s data directory (--data).',
    )
    .requiredOption('--app <name>', 'the app the install belongs to')
    .requiredOption('--install-id <id>', 'the install id to erase (the client’s anonymous id)')
    .option('--url <url>', 'a running collector, e.g. http://127.0.0.1:8787 (DuckDB or ClickHouse)')
    .option('--data <dir>', DATA_FLAG_HELP)
    .option('--config <file>', CONFIG_FLAG_HELP)
    .option('--json', 'print the counts as JSON')
    .action(async (flags: DeleteFlags) => {
      const report = await deleteInstall(flags);
      const where = flags.url ?? dataDirOf(flags, CLICKHOUSE_FIX);
      process.stdout.write(
        flags.json
          ? `${JSON.stringify(report)}\n`
          : `Deleted ${report.events} event${report.events === 1 ? '' : 's'} and ${report.quarantine} quarantine ` +
              `entr${report.quarantine === 1 ? 'y' : 'ies'} of install ${shown(report.installId)}` +
              `${report.storedAs ? ` (stored as ${report.storedAs})` : ''} (app ${shown(report.app)}) from ${where}.\n`,
      );
    });
}
