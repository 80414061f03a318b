/**
 * The daily rollup on ClickHouse: the same rows as DuckDB's (rollup.ts), read by the views through the
 * same `source()`, but kept without transactions, with generations instead.
 *
 * - Every refresh writes under a new generation `gen` (ordered like its watermark: a later watermark, a
 *   larger gen) the rollup rows of the days it (re)computes, one `days` row per such day (its event count),
 *   and last a `state` row: its gen, watermark, the events received up to it, and `base` — the gen of the
 *   last full rebuild. Readers take the newest state row and, per day, the rows of the largest gen in
 *   [base, gen] (`RollupState.rows`): a refresh still writing, or one that crashed, is not seen, and a day
 *   rewritten later replaces its earlier rows without a delete.
 * - Used only while it provably matches the events: the definition (where-traits, layout) is unchanged and
 *   the events received up to the watermark are as many as were rolled up (deletions, retention, race
 *   losers and late journal deliveries break the equality). Otherwise views read raw events.
 * - Refresh (the collector, in the background): days with events received since the watermark are
 *   recomputed whole; a changed definition or a broken count recomputes every day (a rebuild, new base).
 *   Only events received `HORIZON_MS` ago or earlier are rolled up, so a write still settling (a race check,
 *   a journal delivery) rarely lands behind the watermark. Rows of generations nothing reads any more are
 *   deleted by a mutation at most every `CLEANUP_EVERY_MS`.
 * - Funnel start chains stay DuckDB's (funnel views on ClickHouse read raw events).
 */
import type { Catalog } from 'telemark';
import { join, raw, type Sql, sql } from '../store/sql.js';
import type { Store } from '../store/types.js';
import { DAY_MS, isoDay } from './buckets.js';
import type { Dialect } from './dialect.js';
import { toNumber, toText } from './query.js';
import {
  type RefreshReport,
  ROLLUP_DIMENSIONS,
  ROLLUP_TABLES,
  ROLLUP_VERSION,
  type Rollup,
  type RollupState,
  sharedRuns,
  stateRowReader,
  whereTraits,
} from './rollup.js';

/** Only events received at least this long ago are rolled up. */
export const HORIZON_MS = 2 * 60_000;
/** Rows of unread generations are deleted at most this often, and only once unread this long. */
export const CLEANUP_EVERY_MS = 10 * 60_000;
/** Days per INSERT … SELECT when many days are recomputed. */
const CHUNK_DAYS = 7;

const T = {
  events: raw(ROLLUP_TABLES.events),
  installs: raw(ROLLUP_TABLES.installs),
  days: raw(ROLLUP_TABLES.days),
  state: raw(ROLLUP_TABLES.state),
};
const DIMENSIONS = raw(ROLLUP_DIMENSIONS.join(', '));
const DIMENSION_COLUMNS = ROLLUP_DIMENSIONS.map((d) => `${d} String`).join(', ');
/** The UTC day of an event, as ClickHouse's `Date` (`ts` is Int64 epoch ms). */
const DAY = raw("toDate(toDateTime(intDiv(ts, 1000), 'UTC'))");

const TABLES: readonly Sql[] = [
  raw(`CREATE TABLE IF NOT EXISTS ${ROLLUP_TABLES.events} (
    app String, day Date, gen UInt64, install_key UInt64, event String, ${DIMENSION_COLUMNS},
    wtraits String, error_fingerprint String, n UInt64, first_ms Int64, last_ms Int64
  ) ENGINE = MergeTree PARTITION BY toYYYYMM(day) ORDER BY (app, day, gen, event, install_key)`),
  raw(`CREATE TABLE IF NOT EXISTS ${ROLLUP_TABLES.installs} (
    app String, day Date, gen UInt64, install_key UInt64, ${DIMENSION_COLUMNS},
    n UInt64, first_ms Int64, last_ms Int64
  ) ENGINE = MergeTree PARTITION BY toYYYYMM(day) ORDER BY (app, day, gen, install_key)`),
  raw(`CREATE TABLE IF NOT EXISTS ${ROLLUP_TABLES.days} (
    app String, day Date, gen UInt64, events UInt64
  ) ENGINE = MergeTree ORDER BY (app, day, gen)`),
  raw(`CREATE TABLE IF NOT EXISTS ${ROLLUP_TABLES.state} (
    app String, gen UInt64, base UInt64, definition String, watermark_ms Int64, events UInt64, refreshed_at DateTime
  ) ENGINE = MergeTree ORDER BY (app, gen)`),
];

interface StateRow {
  readonly gen: number;
  readonly base: number;
  readonly definition: string;
  readonly watermark: number;
  readonly events: number;
  /** Events received up to the watermark now, and after it. */
  readonly live: number;
  readonly pending: number;
}

/** The per-day filter of the rows a state reads: the largest gen in [base, gen] of each day. */
export function currentRows(app: string, base: number, gen: number): Sql {
  return sql` AND (day, gen) IN (SELECT day, max(gen) FROM ${T.days}
    WHERE app = ${app} AND gen >= ${raw(String(base))} AND gen <= ${raw(String(gen))} GROUP BY day)`;
}

export function createClickHouseRollup(
  store: Store,
  dialect: Dialect,
  options: { readonly cleanupEveryMs?: number } = {},
): Rollup {
  const cleanupEveryMs = options.cleanupEveryMs ?? CLEANUP_EVERY_MS;
  const writable = typeof store.maintain === 'function';
  const readStateRow = stateRowReader(store, writable);
  /** The tables, created by the first refresh of this process (again after a failure). */
  let created: Promise<void> | undefined;
  const shareCheck = sharedRuns<StateRow | null>();
  const shareRefresh = sharedRuns<RefreshReport>();
  const lastCleanup = new Map<string, number>();

  // `wtraits: 'null'`: rows rolled up before a missing where-trait read `null` hold text that is not JSON;
  // the changed definition makes every day recomputed rather than those rows read.
  const definitionOf = (catalog: Catalog): string =>
    JSON.stringify({ rollup: `clickhouse-${ROLLUP_VERSION}`, wtraits: 'null', where: whereTraits(catalog) });

  const readState = async (app: string): Promise<StateRow | null> => {
    const row = await readStateRow(sql`
      SELECT toString(gen) AS gen, toString(base) AS base, definition, watermark_ms, events
      FROM ${T.state} WHERE app = ${app} ORDER BY gen DESC LIMIT 1`);
    if (!row) return null;
    const watermark = toNumber(row.watermark_ms);
    const [counts = {}] = await store.query(sql`
      SELECT countIf(received_at <= ${watermark}) AS live, countIf(received_at > ${watermark}) AS pending
      FROM events WHERE app = ${app}`);
    return {
      gen: Number(row.gen),
      base: Number(row.base),
      definition: toText(row.definition),
      watermark,
      events: toNumber(row.events),
      live: toNumber(counts.live),
      pending: toNumber(counts.pending),
    };
  };

  /**
   * One state check at a time per app: the dashboard's concurrent panel requests share it. Where the store
   * has a change token, a check is reused until the token changes: the counts cost ~0.5 s at 10M events,
   * the token a few ms.
   */
  const checked = new Map<string, { readonly token: string; readonly state: StateRow | null }>();
  const check = (app: string): Promise<StateRow | null> =>
    shareCheck(app, async () => {
      // Read before the check: a change during it makes the next reading differ.
      const token = store.changeToken ? await store.changeToken() : undefined;
      const last = checked.get(app);
      if (token !== undefined && last?.token === token) return last.state;
      const state = await readState(app);
      if (token !== undefined) checked.set(app, { token, state });
      return state;
    });

  const doRefresh = async (app: string, catalog: Catalog): Promise<RefreshReport> => {
    const started = performance.now();
    if (!writable) throw new Error('the rollup can only be refreshed through a store that can maintain it');
    created ??= store.maintain!(TABLES).catch((error: unknown) => {
      created = undefined;
      throw error;
    });
    await created;
    const definition = definitionOf(catalog);
    const current = await readState(app);
    const [latest = {}] = await store.query(
      sql`SELECT count() AS n, max(received_at) AS max_ms FROM events WHERE app = ${app}`,
    );
    const upTo =
      toNumber(latest.n) === 0
        ? (current?.watermark ?? 0)
        : Math.min(toNumber(latest.max_ms), Date.now() - HORIZON_MS);
    const rebuild = !current || current.definition !== definition || current.live !== current.events;
    const from = rebuild ? null : current.watermark;
    if (!rebuild && upTo <= current.watermark)
      return { app, mode: 'none', days: 0, watermark: current.watermark, ms: performance.now() - started };

    // The days to (re)compute: every day with events (a rebuild), or those with events received since.
    const since = from === null ? raw('') : sql` AND received_at > ${from}`;
    const dayRows = await store.query(sql`
      SELECT DISTINCT toUInt32(${DAY}) AS d FROM events WHERE app = ${app} AND received_at <= ${upTo}${since}`);
    const days = dayRows.map((r) => toNumber(r.d) * DAY_MS).sort((a, b) => a - b);
    // Ordered like the watermark, and past every gen before it (a repair at the same watermark).
    const gen = Math.max(upTo * 1000 + Math.floor(Math.random() * 1000), (current?.gen ?? 0) + 1);
    const base = rebuild ? gen : current!.base;
    const G = raw(String(gen));
    const statements: Sql[] = [];
    for (let i = 0; i < days.length; i += CHUNK_DAYS) {
      const chunk = days.slice(i, i + CHUNK_DAYS).map((d) => sql`toDate(${isoDay(d)})`);
      const where = sql`app = ${app} AND received_at <= ${upTo} AND ${DAY} IN (${join(chunk)})`;
      statements.push(
        sql`INSERT INTO ${T.events}
          SELECT app, ${DAY} AS day, ${G}, install_key, event, ${DIMENSIONS},
            ${dialect.whereTraits(whereTraits(catalog))} AS wtraits, error_fingerprint,
            count() AS n, min(ts) AS first_ms, max(ts) AS last_ms
          FROM events WHERE ${where}
          GROUP BY app, day, install_key, event, ${DIMENSIONS}, wtraits, error_fingerprint`,
        sql`INSERT INTO ${T.installs}
          SELECT app, ${DAY} AS day, ${G}, install_key, ${DIMENSIONS},
            count() AS n, min(ts) AS first_ms, max(ts) AS last_ms
          FROM events WHERE ${where}
          GROUP BY app, day, install_key, ${DIMENSIONS}`,
        sql`INSERT INTO ${T.days} SELECT app, ${DAY} AS day, ${G}, count() FROM events WHERE ${where} GROUP BY app, day`,
      );
    }
    await store.maintain!(statements);
    // Last: the state that makes them readable. The events it stands for are counted in the rows it will
    // read, not in `events`: an event written late (received before `upTo`) between two of the INSERTs
    // above is in one table and not the other, or in neither, and must not pass the validity check.
    const rows = currentRows(app, base, gen);
    const [sums = {}] = await store.query(sql`
      SELECT (SELECT sum(n) FROM ${T.events} WHERE app = ${app}${rows}) AS events,
        (SELECT sum(n) FROM ${T.installs} WHERE app = ${app}${rows}) AS installs`);
    const events = toNumber(sums.events);
    if (events !== toNumber(sums.installs))
      throw new Error(
        `the rollup of ${app} changed while it was written (${events} events rolled up, ${toNumber(sums.installs)} in the installs rollup); the next refresh rebuilds it`,
      );
    await store.maintain!([
      sql`INSERT INTO ${T.state} SELECT ${app}, ${G}, ${raw(String(base))}, ${definition}, ${upTo}, ${events}, now()`,
    ]);
    await cleanup(app, base).catch(() => undefined);
    return {
      app,
      mode: !current || current.definition !== definition ? 'rebuild' : rebuild ? 'repair' : 'incremental',
      days: days.length,
      watermark: upTo,
      ms: performance.now() - started,
    };
  };

  /**
   * Delete rows no state can read any more: of gens before the base of a state written at least
   * `CLEANUP_EVERY_MS` ago, and, per day, of gens that a later one below that state's gen replaced.
   */
  async function cleanup(app: string, newestBase: number): Promise<void> {
    const last = lastCleanup.get(app) ?? 0;
    if (Date.now() - last < cleanupEveryMs) return;
    lastCleanup.set(app, Date.now());
    if (last === 0) return; // the first refresh of this process: nothing known to be old yet
    const [settled] = await store.query(sql`
      SELECT toString(gen) AS gen, toString(base) AS base FROM ${T.state}
      WHERE app = ${app} AND refreshed_at <= now() - ${raw(String(Math.floor(cleanupEveryMs / 1000)))}
      ORDER BY gen DESC LIMIT 1`);
    if (!settled) return;
    const gen = raw(String(settled.gen));
    const base = raw(String(Math.min(Number(settled.base), newestBase)));
    const stale = sql`app = ${app} AND gen <= ${gen} AND (gen < ${base} OR (day, gen) NOT IN (
      SELECT day, max(gen) FROM ${T.days} WHERE app = ${app} AND gen >= ${base} AND gen <= ${gen} GROUP BY day))`;
    await store.maintain!([
      sql`ALTER TABLE ${T.events} DELETE WHERE ${stale}`,
      sql`ALTER TABLE ${T.installs} DELETE WHERE ${stale}`,
    ]);
  }

  return {
    supported: true,
    writable,
    async state(app, catalog): Promise<RollupState | null> {
      const row = await check(app);
      if (!row || row.definition !== definitionOf(catalog) || row.live !== row.events) return null;
      return { watermark: row.watermark, pending: row.pending, rows: currentRows(app, row.base, row.gen) };
    },
    refresh: (app, catalog) => shareRefresh(app, () => doRefresh(app, catalog)),
  };
}
