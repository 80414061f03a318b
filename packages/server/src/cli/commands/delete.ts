import type { Command } from 'commander';
import { TelemarkError } from '../../errors.js';
import { DEFAULT_DATA_DIR, openDataDirStore, sql } from '../../store/index.js';
import type { Store } from '../../store/types.js';

interface DeleteFlags {
  readonly app: string;
  readonly installId: string;
  readonly data: string;
  readonly json?: boolean;
}

export interface DeleteReport {
  readonly app: string;
  readonly installId: string;
  readonly events: number;
  readonly quarantine: number;
}

async function quarantineCount(store: Store, app: string): Promise<number> {
  const rows = await store.query<{ n: unknown }>(
    sql`SELECT count(*) AS n FROM quarantine WHERE app = ${app} OR app = ${''}`,
  );
  return Number(rows[0]?.n ?? 0);
}

/** Erase one install of one app from a stopped collector's data directory. */
export async function deleteInstallFromDataDir(flags: DeleteFlags): Promise<DeleteReport> {
  if (flags.app.trim() === '' || flags.installId.trim() === '') {
    throw new TelemarkError('TMK_ERR_BAD_PARAMETER', '--app and --install-id must not be empty');
  }
  const store = await openDataDirStore(flags.data);
  try {
    const before = await quarantineCount(store, flags.app);
    const events = await store.deleteInstall(flags.app, flags.installId);
    const quarantine = before - (await quarantineCount(store, flags.app));
    return { app: flags.app, installId: flags.installId, events, quarantine };
  } finally {
    await store.close();
  }
}

/** `telemark delete --app A --install-id ID [--data DIR]`: erasure of one install (events and quarantine). */
export function registerDeleteCommand(program: Command): void {
  program
    .command('delete')
    .description(
      'Erase every event and quarantine entry of one install of one app, from a stopped collector’s data directory.',
    )
    .requiredOption('--app <name>', 'the app the install belongs to')
    .requiredOption('--install-id <id>', 'the install id to erase (the client’s anonymous id)')
    .option(
      '--data <dir>',
      'the collector’s data directory (the collector must be stopped)',
      `./${DEFAULT_DATA_DIR}`,
    )
    .option('--json', 'print the counts as JSON')
    .action(async (flags: DeleteFlags) => {
      const report = await deleteInstallFromDataDir(flags);
      process.stdout.write(
        flags.json
          ? `${JSON.stringify(report)}\n`
          : `Deleted ${report.events} event${report.events === 1 ? '' : 's'} and ${report.quarantine} quarantine ` +
              `entr${report.quarantine === 1 ? 'y' : 'ies'} of install ${report.installId} (app ${report.app}) from ${flags.data}.\n`,
      );
    });
}
