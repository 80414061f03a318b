/**
 * `telemark migrate --from DIR --to URL`: move a stopped collector's embedded (DuckDB) data — events,
 * quarantine, daily counters — into ClickHouse, with progress on stderr, then verify the counts.
 *
 * Safe to run again, and resumable after an interruption:
 * - events go through the ClickHouse store's exact dedupe, so those already there count as duplicates;
 * - quarantine entries keep their ids, and ids already there are skipped;
 * - counters are written once, together with a marker row (app '', kind `migration`, reason
 *   `source:<fingerprint of the data directory>`, count = the source's counter total) in one INSERT; a
 *   rerun that finds the marker skips them — and refuses if the source's counters changed since.
 * The source is only read (opened read-only; a data directory of an older Telemark has its schema
 * upgraded first, as `telemark serve` would); nothing is removed from it.
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import type { Command } from 'commander';
import { errorMessage, TelemarkError } from '../../errors.js';
import { createClickHouseStore, DEFAULT_DATA_DIR, openDataDirStore, sql } from '../../store/index.js';
import { quarantinePages } from '../../store/quarantine-pages.js';
import type {
  IngestCounter,
  QuarantineEntry,
  Store,
  StoredEvent,
  StoredQuarantineEntry,
} from '../../store/types.js';
import { type StatusOutput, statusLine } from '../progress.js';

export interface MigrateOptions {
  /** The collector's data directory (the collector must be stopped). */
  readonly from: string;
  /** ClickHouse HTTP URL. */
  readonly to: string;
  readonly database?: string;
  readonly user?: string;
  readonly password?: string;
  /** Events per write. @default 50,000 */
  readonly batchEvents?: number;
  /** Where progress goes. @default process.stderr */
  readonly progress?: StatusOutput;
  /** Tests only: quarantine entries read from the source at a time (`QUARANTINE_CHUNK`). */
  readonly quarantinePage?: number;
  /** Tests only: wraps the source store once opened (to watch how it is read). */
  readonly wrapSource?: (source: Store) => Store;
}

export interface MigrateReport {
  readonly source: string;
  readonly target: string;
  readonly events: {
    readonly source: number;
    /** Written now. */
    readonly migrated: number;
    /** Already in ClickHouse (an earlier run, or the same events sent there directly). */
    readonly alreadyThere: number;
    /** Per app: source count, and ClickHouse's count after the migration. */
    readonly apps: Readonly<Record<string, { readonly source: number; readonly target: number }>>;
  };
  readonly quarantine: { readonly source: number; readonly migrated: number; readonly alreadyThere: number };
  readonly counters: { readonly source: number; readonly migrated: boolean };
  readonly seconds: number;
}

const DEFAULT_BATCH = 50_000;
const MAX_BATCH = 1_000_000;
const BATCH_EXPECTED = `give a whole number of events from 1 to ${MAX_BATCH.toLocaleString('en-US')}`;

/**
 * `--batch` as typed, as a number; anything but a whole number in range is TMK_ERR_BAD_PARAMETER echoing
 * the text given (once turned into a number, "abc" could only be echoed as NaN).
 */
export function batchFlag(text: string): number {
  const batch = Number(text);
  if (!/^\d+$/.test(text.trim()) || batch < 1 || batch > MAX_BATCH)
    throw new TelemarkError('TMK_ERR_BAD_PARAMETER', `--batch ${JSON.stringify(text)}: ${BATCH_EXPECTED}`);
  return batch;
}
/**
 * Quarantine entries read from the source, and looked up in ClickHouse, at a time: the copy holds one
 * page, whatever the quarantine's size. (Until 2026-11-28 it read the whole quarantine at once.)
 */
const QUARANTINE_CHUNK = 5_000;

// — reading the source —

type Row = Record<string, unknown>;
const bool = (v: unknown) => v === true || v === 1 || v === '1' || v === 'true';
const text = (v: unknown) => (v === null || v === undefined ? '' : String(v));
const ms = (v: unknown) => (typeof v === 'number' ? v : Date.parse(String(v)));
const json = (v: unknown) => (typeof v === 'string' ? JSON.parse(v) : (v ?? {})) as Record<string, unknown>;

/** One exported row (NDJSON of `exportEvents`: snake_case, ISO times) back to a `StoredEvent`. */
export function exportedRowToEvent(r: Row): StoredEvent {
  return {
    app: text(r.app),
    messageId: text(r.message_id),
    event: text(r.event),
    installId: text(r.install_id),
    sessionId: text(r.session_id),
    seq: Number(r.seq),
    appVersion: text(r.app_version),
    timestamp: ms(r.ts),
    receivedAt: ms(r.received_at),
    skewMs: Number(r.skew_ms),
    clamped: bool(r.clamped),
    osName: text(r.os_name),
    osVersion: text(r.os_version),
    osBuild: text(r.os_build),
    arch: text(r.arch),
    platform: text(r.platform),
    installMethod: text(r.install_method),
    envClass: text(r.env_class),
    ciVendor: text(r.ci_vendor),
    container: bool(r.container),
    wsl: Number(r.wsl),
    agent: text(r.agent),
    mode: text(r.mode),
    nodeVersion: text(r.node_version),
    protocol: text(r.protocol) as StoredEvent['protocol'],
    library: text(r.library),
    newInstall: bool(r.new_install),
    droppedBefore: Number(r.dropped_before),
    errorFingerprint: text(r.error_fingerprint),
    errorText: text(r.error_text),
    traits: json(r.traits),
    extra: json(r.extra),
  };
}

async function countsByApp(store: Store): Promise<Map<string, number>> {
  const rows = await store.query<{ app: string; n: unknown }>(
    sql`SELECT app, count(*) AS n FROM events GROUP BY app`,
  );
  return new Map(rows.map((r) => [String(r.app), Number(r.n)]));
}

/**
 * The source, read-only. A data directory written by an older Telemark is first opened once for
 * writing, which upgrades its schema (data kept) — the same as starting `telemark serve` on it would.
 */
async function openSource(dir: string, output: { write(text: string): unknown }): Promise<Store> {
  try {
    return await openDataDirStore(dir, { readOnly: true });
  } catch (error) {
    if (
      !(
        error instanceof TelemarkError &&
        error.code === 'TMK_ERR_STORE_SCHEMA' &&
        /has schema \d+, this build expects/.test(error.message)
      )
    )
      throw error;
    output.write(`migrate: upgrading the schema of ${dir} first (its data is kept)\n`);
    const upgrade = await openDataDirStore(dir);
    await upgrade.close();
    return openDataDirStore(dir, { readOnly: true });
  }
}

// — progress —

/**
 * @internal `migrate`'s progress: on a terminal a bar redrawn in place (`statusLine`: fitted to the
 * terminal's width, cleared before any other line), elsewhere a line every 5 s.
 */
export function createProgress(output: StatusOutput, total: number) {
  const started = performance.now();
  const status = statusLine(output);
  let loggedAt = -Infinity;
  const fmt = (n: number) => n.toLocaleString('en-US');
  const line = (done: number) => {
    const rate = done / Math.max(0.001, (performance.now() - started) / 1000);
    return `${fmt(done)} / ${fmt(total)} events · ${fmt(Math.round(rate))}/s`;
  };
  const bar = (done: number) => {
    const width = 30;
    const share = total === 0 ? 1 : Math.min(1, done / total);
    const filled = Math.round(share * width);
    return `[${'█'.repeat(filled)}${'░'.repeat(width - filled)}] ${String(Math.floor(share * 100)).padStart(3)}% ${line(done)}`;
  };
  return {
    update(done: number) {
      if (output.isTTY) return status.update(bar(done));
      // In a log, a line every 5 s: a migration of millions of events takes minutes, and a CI job or
      // a script's log should show it moving (a redrawn bar would be a line per redraw there).
      const now = performance.now();
      if (now - loggedAt < 5000) return;
      loggedAt = now;
      output.write(`migrate: ${line(done)}\n`);
    },
    done(done: number) {
      status.clear();
      output.write(output.isTTY ? `${bar(done)}\n` : `migrate: ${line(done)}\n`);
    },
    note(message: string) {
      status.clear();
      output.write(`migrate: ${message}\n`);
    },
  };
}

// — the migration —

export async function migrateToClickHouse(options: MigrateOptions): Promise<MigrateReport> {
  const started = performance.now();
  const problems: string[] = [];
  if (!options.from || options.from.trim() === '') problems.push('--from: give the data directory');
  if (!options.to || !/^https?:\/\/[^/\s]+\/?$/.test(options.to))
    problems.push(
      `--to ${JSON.stringify(options.to ?? '')}: give ClickHouse's HTTP URL, e.g. http://127.0.0.1:8123`,
    );
  const batchEvents = options.batchEvents ?? DEFAULT_BATCH;
  if (!Number.isSafeInteger(batchEvents) || batchEvents < 1 || batchEvents > MAX_BATCH)
    problems.push(`--batch ${batchEvents}: ${BATCH_EXPECTED}`);
  if (problems.length > 0) throw new TelemarkError('TMK_ERR_BAD_PARAMETER', problems.join('; '));

  const fromDir = path.resolve(options.from);
  const opened = await openSource(fromDir, options.progress ?? process.stderr);
  const source = options.wrapSource ? options.wrapSource(opened) : opened;
  const quarantinePage = options.quarantinePage ?? QUARANTINE_CHUNK;
  const target = createClickHouseStore({
    url: options.to,
    ...(options.database !== undefined ? { database: options.database } : {}),
    ...(options.user !== undefined ? { user: options.user } : {}),
    ...(options.password !== undefined ? { password: options.password } : {}),
  });
  const scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'telemark-migrate-'));
  try {
    await target.init();
    const fingerprint = createHash('sha256').update(fs.realpathSync(fromDir)).digest('hex').slice(0, 16);
    const sourceApps = await countsByApp(source);
    const targetBefore = await countsByApp(target);
    const total = [...sourceApps.values()].reduce((a, b) => a + b, 0);

    // — events: exported from DuckDB as NDJSON, written in batches through the store's dedupe —
    const exported = path.join(scratch, 'events.ndjson');
    await source.exportEvents({ format: 'ndjson', path: exported });
    const bar = createProgress(options.progress ?? process.stderr, total);
    const migratedByApp = new Map<string, number>();
    let migrated = 0;
    let alreadyThere = 0;
    let done = 0;
    let pending: StoredEvent[] = [];
    const flush = async () => {
      if (pending.length === 0) return;
      const events = pending;
      pending = [];
      const { statuses } = await target.write({ events, quarantine: [], counters: [] });
      statuses.forEach((status, i) => {
        if (status === 'accepted') {
          migrated++;
          const app = events[i]!.app;
          migratedByApp.set(app, (migratedByApp.get(app) ?? 0) + 1);
        } else alreadyThere++;
      });
      done += events.length;
      bar.update(done);
    };
    const lines = readline.createInterface({ input: fs.createReadStream(exported), crlfDelay: Infinity });
    for await (const line of lines) {
      if (line === '') continue;
      pending.push(exportedRowToEvent(JSON.parse(line) as Row));
      if (pending.length >= batchEvents) await flush();
    }
    await flush();
    bar.done(done);
    fs.rmSync(exported, { force: true });

    // — quarantine: source ids kept, ids already there skipped —
    let quarantineSource = 0;
    let quarantineMigrated = 0;
    for await (const chunk of quarantinePages(source, {}, quarantinePage)) {
      quarantineSource += chunk.length;
      const present = await target.query<{ id: string }>(
        sql`SELECT id FROM quarantine WHERE has(${chunk.map((e) => e.id)}, id)`,
      );
      const skip = new Set(present.map((r) => String(r.id)));
      const missing: (QuarantineEntry & Pick<StoredQuarantineEntry, 'id'>)[] = chunk.filter(
        (e) => !skip.has(e.id),
      );
      if (missing.length > 0) await target.write({ events: [], quarantine: missing, counters: [] });
      quarantineMigrated += missing.length;
    }

    // — counters: once, with the marker in the same INSERT —
    const counterRows = await source.query<Row>(
      sql`SELECT strftime(day, '%Y-%m-%d') AS day, app, kind, reason, count FROM ingest_counters`,
    );
    const counters: IngestCounter[] = counterRows.map((r) => ({
      day: text(r.day),
      app: text(r.app),
      kind: text(r.kind),
      reason: text(r.reason),
      count: Number(r.count),
    }));
    const counterTotal = counters.reduce((sum, c) => sum + c.count, 0);
    const markerReason = `source:${fingerprint}`;
    const [marker] = await target.query<{ n: unknown }>(
      sql`SELECT sum(count) AS n FROM ingest_counters WHERE app = '' AND kind = 'migration' AND reason = ${markerReason}`,
    );
    const markedTotal = Number(marker?.n ?? 0);
    let countersMigrated = false;
    if (markedTotal === 0) {
      const today = new Date().toISOString().slice(0, 10);
      await target.write({
        events: [],
        quarantine: [],
        counters: [
          ...counters,
          { day: today, app: '', kind: 'migration', reason: markerReason, count: counterTotal },
        ],
      });
      countersMigrated = true;
    } else if (markedTotal !== counterTotal) {
      throw new TelemarkError(
        'TMK_ERR_MIGRATE',
        `the counters of ${fromDir} were migrated before (total ${markedTotal}) and have changed since (now ${counterTotal}); events and quarantine were brought up to date, counters were not added twice`,
      );
    }

    // — verify —
    const targetAfter = await countsByApp(target);
    const apps: Record<string, { source: number; target: number }> = {};
    const mismatches: string[] = [];
    for (const [app, n] of sourceApps) {
      const after = targetAfter.get(app) ?? 0;
      apps[app] = { source: n, target: after };
      const expected = (targetBefore.get(app) ?? 0) + (migratedByApp.get(app) ?? 0);
      if (after !== expected || after < n)
        mismatches.push(
          `${app}: ${n} events in the source, ${after} in ClickHouse (expected ${Math.max(expected, n)})`,
        );
    }
    if (migrated + alreadyThere !== total)
      mismatches.push(`${total} events exported, ${migrated + alreadyThere} written or found`);
    for await (const chunk of quarantinePages(source, {}, quarantinePage)) {
      const ids = chunk.map((e) => e.id);
      const [found] = await target.query<{ n: unknown }>(
        sql`SELECT count() AS n FROM quarantine WHERE has(${ids}, id)`,
      );
      if (Number(found?.n ?? 0) !== ids.length)
        mismatches.push(`quarantine: ${ids.length - Number(found?.n ?? 0)} entries missing in ClickHouse`);
    }
    if (mismatches.length > 0)
      throw new TelemarkError('TMK_ERR_MIGRATE', `verification: ${mismatches.join('; ')}`);

    return {
      source: fromDir,
      target: `${options.to.replace(/\/$/, '')}/${options.database ?? 'telemark'}`,
      events: { source: total, migrated, alreadyThere, apps },
      quarantine: {
        source: quarantineSource,
        migrated: quarantineMigrated,
        alreadyThere: quarantineSource - quarantineMigrated,
      },
      counters: { source: counterTotal, migrated: countersMigrated },
      seconds: Math.round((performance.now() - started) / 100) / 10,
    };
  } catch (error) {
    if (error instanceof TelemarkError) throw error;
    throw new TelemarkError('TMK_ERR_MIGRATE', errorMessage(error), {
      cause: error,
    });
  } finally {
    fs.rmSync(scratch, { recursive: true, force: true });
    await source.close().catch(() => undefined);
    await target.close().catch(() => undefined);
  }
}

interface MigrateFlags {
  readonly from: string;
  readonly to: string;
  readonly database: string;
  readonly user: string;
  readonly password?: string;
  readonly batch: string;
  readonly json?: boolean;
}

export function registerMigrateCommand(program: Command): void {
  program
    .command('migrate')
    .description(
      'Move a stopped collector’s embedded data (events, quarantine, counters) to ClickHouse and verify the counts. Safe to run again: it resumes.',
    )
    .option(
      '--from <dir>',
      'the collector’s data directory (the collector must be stopped)',
      `./${DEFAULT_DATA_DIR}`,
    )
    .requiredOption('--to <url>', 'ClickHouse HTTP URL, e.g. http://127.0.0.1:8123')
    .option('--database <name>', 'ClickHouse database (created when missing)', 'telemark')
    .option('--user <name>', 'ClickHouse user', 'default')
    .option('--password <password>', 'ClickHouse password (or TELEMARK_CLICKHOUSE_PASSWORD)')
    .option('--batch <events>', 'events per write', String(DEFAULT_BATCH))
    .option('--json', 'print the report as JSON')
    .action(async (flags: MigrateFlags) => {
      const report = await migrateToClickHouse({
        from: flags.from,
        to: flags.to,
        database: flags.database,
        user: flags.user,
        password: flags.password ?? process.env.TELEMARK_CLICKHOUSE_PASSWORD ?? '',
        batchEvents: batchFlag(flags.batch),
      });
      if (flags.json) {
        process.stdout.write(`${JSON.stringify(report)}\n`);
        return;
      }
      const e = report.events;
      process.stdout.write(
        [
          `Migrated ${report.source} → ${report.target} in ${report.seconds} s, counts verified.`,
          `  events: ${e.migrated} written, ${e.alreadyThere} already there (${e.source} in the source)`,
          ...Object.entries(e.apps).map(
            ([app, n]) => `    ${app}: ${n.source} in the source, ${n.target} in ClickHouse`,
          ),
          `  quarantine: ${report.quarantine.migrated} written, ${report.quarantine.alreadyThere} already there`,
          `  counters: ${report.counters.migrated ? `written (total ${report.counters.source})` : 'already migrated by an earlier run'}`,
          '',
        ].join('\n'),
      );
    });
}
