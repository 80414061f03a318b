/**
 * The daily rollup: `analytics_rollup` holds, per app and UTC day, one row per (install, event, context
 * dimensions, where-trait values, error fingerprint) with the event count and the first/last event time — 4× fewer rows than
 * `events` for CLI telemetry, and no JSON parsing at query time. `analytics_rollup_installs` drops the event
 * (one row per install, day and context: 20× fewer rows than `events`) for the views that count installs
 * but not per event. docs/analytics.md has the numbers.
 *
 * It is derived data, never the source of truth:
 * - Views read it through `source()` as "rollup rows for events received up to the watermark, plus raw
 *   events received after it" — always complete and fresh, whatever the refresh lag.
 * - It is used only while it provably matches `events`: the count of events received up to the watermark
 *   must equal what was rolled up (a deletion, retention, or a group commit that landed late breaks the
 *   equality), and the definition (where-traits from the catalog, rollup version, DuckDB version for
 *   `hash()`) must be unchanged. Otherwise views read raw events until a refresh repairs it.
 * - Refresh (collector only: it needs `Store.maintain`, i.e. the writer) rolls up new events, recomputes
 *   days whose counts no longer match (deletions, late commits) or that have grown many fragments, and
 *   rebuilds everything when the definition changed.
 *
 * DuckDB's; ClickHouse keeps the same rows with generations instead of transactions (rollup-clickhouse.ts).
 */
import type { Catalog } from 'telemark';
import { EVENT_ROWS_TABLE } from '../store/duckdb/schema.js';
import { join, raw, type Sql, sql } from '../store/sql.js';
import type { Store } from '../store/types.js';
import { DAY_MS, isoDay } from './buckets.js';
import type { Dialect } from './dialect.js';
import { startChains } from './funnel-starts.js';
import { inList, toNumber, toText } from './query.js';

export const ROLLUP_VERSION = 4;

/**
 * Table names carry the version: a new layout gets new tables (filled by a rebuild) and the old ones are
 * dropped, so no migration of derived data is ever needed.
 */
export const ROLLUP_TABLES = Object.freeze({
  events: `analytics_rollup_v${ROLLUP_VERSION}`,
  installs: `analytics_rollup_installs_v${ROLLUP_VERSION}`,
  days: `analytics_rollup_days_v${ROLLUP_VERSION}`,
  state: `analytics_rollup_state_v${ROLLUP_VERSION}`,
  starts: `analytics_rollup_starts_v${ROLLUP_VERSION}`,
});

const T = {
  events: raw(ROLLUP_TABLES.events),
  installs: raw(ROLLUP_TABLES.installs),
  days: raw(ROLLUP_TABLES.days),
  state: raw(ROLLUP_TABLES.state),
  starts: raw(ROLLUP_TABLES.starts),
};

/** Tables of earlier layouts (and of the unversioned first one), dropped by a rebuild. */
const KINDS = [
  'analytics_rollup',
  'analytics_rollup_installs',
  'analytics_rollup_days',
  'analytics_rollup_state',
  'analytics_rollup_starts',
];
const OLD_TABLES: readonly Sql[] = [
  ...KINDS,
  ...Array.from({ length: ROLLUP_VERSION - 1 }, (_, i) => KINDS.map((name) => `${name}_v${i + 1}`)).flat(),
].map((name) => raw(`DROP TABLE IF EXISTS ${name}`));

/** The context columns kept in the rollup (and the breakdown dimensions). */
export const ROLLUP_DIMENSIONS = [
  'app_version',
  'os_name',
  'os_version',
  'arch',
  'platform',
  'install_method',
  'env_class',
  'ci_vendor',
  'mode',
] as const;

const DIMENSION_LIST = raw(ROLLUP_DIMENSIONS.join(', '));

/** Days per transaction when an app's rollup is rebuilt. */
const REBUILD_CHUNK_DAYS = 7;

/** Fragments (incremental appends) a day may collect before it is recomputed as one. */
const MAX_FRAGMENTS = 8;

const TABLES: readonly Sql[] = [
  raw(`CREATE TABLE IF NOT EXISTS ${ROLLUP_TABLES.events} (
    app VARCHAR NOT NULL, day DATE NOT NULL, install_key UBIGINT NOT NULL, event VARCHAR NOT NULL,
    app_version VARCHAR NOT NULL, os_name VARCHAR NOT NULL, os_version VARCHAR NOT NULL, arch VARCHAR NOT NULL,
    platform VARCHAR NOT NULL, install_method VARCHAR NOT NULL, env_class VARCHAR NOT NULL,
    ci_vendor VARCHAR NOT NULL, mode VARCHAR NOT NULL, wtraits VARCHAR NOT NULL, error_fingerprint VARCHAR NOT NULL,
    n BIGINT NOT NULL, first_ms BIGINT NOT NULL, last_ms BIGINT NOT NULL)`),
  raw(`CREATE TABLE IF NOT EXISTS ${ROLLUP_TABLES.installs} (
    app VARCHAR NOT NULL, day DATE NOT NULL, install_key UBIGINT NOT NULL,
    app_version VARCHAR NOT NULL, os_name VARCHAR NOT NULL, os_version VARCHAR NOT NULL, arch VARCHAR NOT NULL,
    platform VARCHAR NOT NULL, install_method VARCHAR NOT NULL, env_class VARCHAR NOT NULL,
    ci_vendor VARCHAR NOT NULL, mode VARCHAR NOT NULL,
    n BIGINT NOT NULL, first_ms BIGINT NOT NULL, last_ms BIGINT NOT NULL)`),
  raw(`CREATE TABLE IF NOT EXISTS ${ROLLUP_TABLES.days} (
    app VARCHAR NOT NULL, day DATE NOT NULL, events BIGINT NOT NULL, fragments INTEGER NOT NULL,
    PRIMARY KEY (app, day))`),
  raw(`CREATE TABLE IF NOT EXISTS ${ROLLUP_TABLES.starts} (
    app VARCHAR NOT NULL, funnel VARCHAR NOT NULL, day DATE NOT NULL, session_key UBIGINT NOT NULL,
    t1 BIGINT NOT NULL, app_version VARCHAR NOT NULL, os_name VARCHAR NOT NULL, env_class VARCHAR NOT NULL,
    level INTEGER NOT NULL, times BIGINT[] NOT NULL)`),
  raw(`CREATE TABLE IF NOT EXISTS ${ROLLUP_TABLES.state} (
    app VARCHAR NOT NULL PRIMARY KEY, definition VARCHAR NOT NULL, watermark_ms BIGINT NOT NULL,
    events BIGINT NOT NULL, refreshed_at TIMESTAMP NOT NULL)`),
];

/** Which traits each event needs kept for the catalog's outcome `where` clauses (sorted, stable). */
export function whereTraits(catalog: Catalog): Record<string, string[]> {
  const byEvent: Record<string, Set<string>> = {};
  for (const outcome of Object.values(catalog.input.outcomes ?? {}))
    for (const result of Object.values(outcome.results))
      for (const trait of Object.keys(result.where ?? {})) {
        byEvent[result.event] ??= new Set();
        byEvent[result.event]!.add(trait);
      }
  return Object.fromEntries(
    Object.keys(byEvent)
      .sort()
      .map((event) => [event, [...byEvent[event]!].sort()]),
  );
}

/** What a rollup row of the raw events looks like: one place, used by refresh and by `source()`. */
export function rollupAggregate(dialect: Dialect, catalog: Catalog, where: Sql): Sql {
  return sql`
    SELECT app, CAST(ts AS DATE) AS day, ${dialect.installKey} AS install_key, event, ${DIMENSION_LIST},
      ${dialect.whereTraits(whereTraits(catalog))} AS wtraits, error_fingerprint,
      count(*) AS n, ${dialect.epochMs(raw('min(ts)'))} AS first_ms, ${dialect.epochMs(raw('max(ts)'))} AS last_ms
    FROM events WHERE ${where}
    GROUP BY app, day, install_key, event, ${DIMENSION_LIST}, wtraits, error_fingerprint`;
}

/** The install-level rollup: one row per install, day and context, whatever the events (5× fewer rows again). */
export function rollupInstallsAggregate(dialect: Dialect, where: Sql): Sql {
  return sql`
    SELECT app, CAST(ts AS DATE) AS day, ${dialect.installKey} AS install_key, ${DIMENSION_LIST},
      count(*) AS n, ${dialect.epochMs(raw('min(ts)'))} AS first_ms, ${dialect.epochMs(raw('max(ts)'))} AS last_ms
    FROM events WHERE ${where}
    GROUP BY app, day, install_key, ${DIMENSION_LIST}`;
}

interface FunnelDefinition {
  readonly name: string;
  readonly steps: readonly string[];
  readonly windowMs: number;
}

const funnelsOf = (catalog: Catalog): FunnelDefinition[] =>
  Object.entries(catalog.input.funnels ?? {}).map(([name, spec]) => ({
    name,
    steps: spec.steps,
    windowMs: (spec.windowSeconds ?? 600) * 1000,
  }));

/** Consecutive UTC days (their start, epoch ms) as [start, end) spans. */
function daysToSpans(days: Iterable<number>): [number, number][] {
  const spans: [number, number][] = [];
  for (const day of [...new Set(days)].sort((a, b) => a - b)) {
    const last = spans.at(-1);
    if (last && last[1] === day) last[1] = day + DAY_MS;
    else spans.push([day, day + DAY_MS]);
  }
  return spans;
}

/**
 * Recompute a funnel's stored start chains for spans of days: delete them, then chain every start in those
 * days over the steps received up to `upTo` (steps may follow into the next days, within the window).
 */
function restart(
  dialect: Dialect,
  app: string,
  funnel: FunnelDefinition,
  spans: [number, number][],
  upTo: number,
): Sql[] {
  if (spans.length === 0) return [];
  const extended: [number, number][] = [];
  for (const [a, b] of spans) {
    const last = extended.at(-1);
    if (last && a <= last[1]) last[1] = Math.max(last[1], b + funnel.windowMs);
    else extended.push([a, b + funnel.windowMs]);
  }
  const startSpans = join(
    spans.map(([a, b]) => sql`(ts >= ${dialect.timestamp(a)} AND ts < ${dialect.timestamp(b)})`),
    ' OR ',
  );
  const rows = join(
    extended.map(
      ([a, b]) => sql`
        SELECT hash(install_id, session_id) AS k, event, ${dialect.epochMs(raw('ts'))} AS t, app_version, os_name,
          env_class, event = ${funnel.steps[0]!} AND (${startSpans}) AS is_start
        FROM events
        WHERE app = ${app} AND session_id <> '' AND ${inList(raw('event'), funnel.steps)}
          AND received_at <= ${dialect.timestamp(upTo)} AND ts >= ${dialect.timestamp(a)} AND ts < ${dialect.timestamp(b)}`,
    ),
    ' UNION ALL ',
  );
  return [
    sql`DELETE FROM ${T.starts} WHERE app = ${app} AND funnel = ${funnel.name} AND ${daySpans(spans)}`,
    sql`INSERT INTO ${T.starts}
      SELECT ${app}, ${funnel.name}, CAST(epoch_ms(t1) AS DATE), k, t1, app_version, os_name, env_class, level, times
      FROM (${startChains(rows, funnel.steps, funnel.windowMs)}) c`,
  ];
}

export interface RollupState {
  /** Events received up to here (epoch ms) are in the rollup. */
  readonly watermark: number;
  /** Events received after the watermark: what views read raw. */
  readonly pending: number;
  /**
   * A condition (` AND …`) on rollup rows that picks the ones this state stands for, where the tables hold
   * others too (ClickHouse's generations, rollup-clickhouse.ts); none on DuckDB.
   */
  readonly rows?: Sql;
}

export interface RefreshReport {
  readonly app: string;
  readonly mode: 'none' | 'incremental' | 'repair' | 'rebuild';
  /** Days recomputed in full. */
  readonly days: number;
  readonly watermark: number;
  readonly ms: number;
}

export interface Rollup {
  /** The usable rollup state of an app, or null (no rollup, stale definition, or counts that disagree). */
  state(app: string, catalog: Catalog): Promise<RollupState | null>;
  /** Bring an app's rollup up to date. Needs a writable store with `maintain`. Concurrent calls share one run. */
  refresh(app: string, catalog: Catalog): Promise<RefreshReport>;
  /** Whether this store can hold a rollup at all. */
  readonly supported: boolean;
  /** Whether `refresh` can run here (a writable DuckDB store). */
  readonly writable: boolean;
}

interface StateRow {
  readonly definition: string;
  readonly watermark: number;
  readonly events: number;
  readonly live: number;
  readonly pending: number;
}

/**
 * A reader of an app's rollup state row: undefined when it has none, or there are no rollup tables yet
 * (never refreshed) — the views then read raw events. A store that cannot refresh never gets the tables,
 * so after one failed read it stops asking.
 */
export function stateRowReader(
  store: Store,
  writable: boolean,
): (query: Sql) => Promise<Record<string, unknown> | undefined> {
  let missing = false;
  return async (query) => {
    if (missing) return undefined;
    try {
      const [row] = await store.query(query);
      return row;
    } catch {
      if (!writable) missing = true;
      return undefined;
    }
  };
}

/** One run per key at a time: a call while one runs shares it (the dashboard's panels arrive together). */
export function sharedRuns<V>(): (key: string, run: () => Promise<V>) => Promise<V> {
  const running = new Map<string, Promise<V>>();
  return (key, run) => {
    let current = running.get(key);
    if (!current) {
      current = run().finally(() => running.delete(key));
      running.set(key, current);
    }
    return current;
  };
}

export function createRollup(store: Store, dialect: Dialect, options: { readOnly?: boolean } = {}): Rollup {
  const supported = dialect.name === 'duckdb';
  const writable = supported && typeof store.maintain === 'function' && !options.readOnly;
  let engineVersion: Promise<string> | undefined;
  const readStateRow = stateRowReader(store, writable);
  const shareCheck = sharedRuns<StateRow | null>();
  const shareRefresh = sharedRuns<RefreshReport>();

  const definitionOf = async (catalog: Catalog): Promise<string> => {
    engineVersion ??= store
      .query<{ v: string }>(sql`SELECT version() AS v`)
      .then((rows) => toText(rows[0]?.v))
      .catch(() => 'unknown');
    return JSON.stringify({
      rollup: ROLLUP_VERSION,
      engine: await engineVersion,
      where: whereTraits(catalog),
      funnels: funnelsOf(catalog),
    });
  };

  const readState = async (app: string): Promise<StateRow | null> => {
    if (!supported) return null;
    const row = await readStateRow(
      sql`SELECT definition, watermark_ms, events FROM ${T.state} WHERE app = ${app}`,
    );
    if (!row) return null;
    const watermark = toNumber(row.watermark_ms);
    // Two cheap counts: all of the app's events (one column), and those past the watermark (zone maps
    // skip all but the newest row groups). What lies at or before the watermark is the difference.
    // They read the physical row table, not the `events` view, whose join would cost ~5× per request.
    const rows = raw(EVENT_ROWS_TABLE);
    const [counts = {}] = await store.query(sql`
      SELECT (SELECT count(*) FROM ${rows} WHERE app = ${app}) AS total,
        (SELECT count(*) FROM ${rows} WHERE app = ${app} AND received_at > ${dialect.timestamp(watermark)}) AS pending`);
    const pending = toNumber(counts.pending);
    return {
      definition: toText(row.definition),
      watermark,
      events: toNumber(row.events),
      live: toNumber(counts.total) - pending,
      pending,
    };
  };

  /**
   * One state check at a time per app: the dashboard's concurrent requests share it. Where the store
   * reports its changes, a check is reused until the store changes (the two counts cost ~25 ms at 10M).
   */
  const checked = new Map<string, { readonly changes: number; readonly state: StateRow | null }>();
  const check = (app: string): Promise<StateRow | null> => {
    // Read before the check starts: a change during it makes the next reading differ.
    const changes = store.changes?.();
    const last = checked.get(app);
    if (changes !== undefined && last?.changes === changes) return Promise.resolve(last.state);
    return shareCheck(app, async () => {
      const state = await readState(app);
      if (changes !== undefined) checked.set(app, { changes, state });
      return state;
    });
  };

  const doRefresh = async (app: string, catalog: Catalog): Promise<RefreshReport> => {
    const started = performance.now();
    if (!writable) throw new Error('the rollup can only be refreshed on a writable DuckDB store');
    const definition = await definitionOf(catalog);
    const current = await readState(app);
    const [live = {}] = await store.query(
      sql`SELECT count(*) AS n, ${dialect.epochMs(raw('max(received_at)'))} AS max_ms FROM events WHERE app = ${app}`,
    );
    const total = toNumber(live.n);
    const upTo = total === 0 ? (current?.watermark ?? 0) : toNumber(live.max_ms);
    const aggregate = (where: Sql) => [
      sql`INSERT INTO ${T.events} ${rollupAggregate(dialect, catalog, where)}`,
      sql`INSERT INTO ${T.installs} ${rollupInstallsAggregate(dialect, where)}`,
    ];
    const perDay = (where: Sql) =>
      sql`SELECT app, CAST(ts AS DATE) AS day, count(*) AS events, 1 AS fragments FROM events WHERE ${where} GROUP BY app, day`;
    const received = (from: number | null, to: number) =>
      from === null
        ? sql`received_at <= ${dialect.timestamp(to)}`
        : sql`received_at > ${dialect.timestamp(from)} AND received_at <= ${dialect.timestamp(to)}`;
    const state = sql`INSERT OR REPLACE INTO ${T.state}
      SELECT ${app}, ${definition}, CAST(${upTo} AS BIGINT),
        (SELECT coalesce(sum(events), 0) FROM ${T.days} WHERE app = ${app}), now()::TIMESTAMP`;
    const ofApp = sql`app = ${app}`;

    /** Every day with events, as one span (for a rebuild). */
    const allDays = async (): Promise<[number, number][]> => {
      const [range = {}] = await store.query(sql`
        SELECT ${dialect.epochMs(raw('min(ts)'))} AS lo, ${dialect.epochMs(raw('max(ts)'))} AS hi
        FROM events WHERE ${ofApp} AND ${received(null, upTo)}`);
      if (range.lo === null || range.lo === undefined) return [];
      const first = Math.floor(toNumber(range.lo) / DAY_MS) * DAY_MS;
      return [[first, Math.floor(toNumber(range.hi) / DAY_MS) * DAY_MS + DAY_MS]];
    };

    if (!current || current.definition !== definition) {
      // A rebuild runs in chunks of days, each its own transaction, so ingest commits in between instead of
      // waiting for the whole file. The state row comes last: until then views read raw events.
      const [everything] = await allDays();
      await store.maintain!([
        ...OLD_TABLES,
        ...TABLES,
        sql`DELETE FROM ${T.state} WHERE ${ofApp}`,
        sql`DELETE FROM ${T.events} WHERE ${ofApp}`,
        sql`DELETE FROM ${T.installs} WHERE ${ofApp}`,
        sql`DELETE FROM ${T.days} WHERE ${ofApp}`,
        sql`DELETE FROM ${T.starts} WHERE ${ofApp}`,
      ]);
      if (everything) {
        for (let from = everything[0]; from < everything[1]; from += REBUILD_CHUNK_DAYS * DAY_MS) {
          const chunk: [number, number] = [from, Math.min(from + REBUILD_CHUNK_DAYS * DAY_MS, everything[1])];
          const where = sql`${ofApp} AND ${received(null, upTo)}
            AND ts >= ${dialect.timestamp(chunk[0])} AND ts < ${dialect.timestamp(chunk[1])}`;
          await store.maintain!([
            ...aggregate(where),
            sql`INSERT INTO ${T.days} ${perDay(where)}`,
            ...funnelsOf(catalog).flatMap((funnel) => restart(dialect, app, funnel, [chunk], upTo)),
          ]);
        }
      }
      await store.maintain!([state]);
      return { app, mode: 'rebuild', days: -1, watermark: upTo, ms: performance.now() - started };
    }

    // Days to recompute: counts that disagree with events received up to the watermark, and fragmented days.
    const days = new Set<string>();
    const repair = current.live !== current.events;
    if (repair) {
      const rows = await store.query(sql`
        SELECT strftime(coalesce(e.day, r.day), '%Y-%m-%d') AS day
        FROM (SELECT CAST(ts AS DATE) AS day, count(*) AS n FROM events
              WHERE ${ofApp} AND ${received(null, current.watermark)} GROUP BY day) e
        FULL OUTER JOIN (SELECT day, events FROM ${T.days} WHERE ${ofApp}) r ON e.day = r.day
        WHERE coalesce(e.n, 0) <> coalesce(r.events, 0)`);
      for (const row of rows) days.add(toText(row.day));
    }
    const fragmented = await store.query(
      sql`SELECT strftime(day, '%Y-%m-%d') AS day FROM ${T.days} WHERE ${ofApp} AND fragments >= ${MAX_FRAGMENTS}`,
    );
    for (const row of fragmented) days.add(toText(row.day));
    if (days.size === 0 && upTo <= current.watermark)
      return { app, mode: 'none', days: 0, watermark: current.watermark, ms: performance.now() - started };

    const dayList = [...days].sort();
    const dayValues = dayList.map((d) => sql`CAST(${d} AS DATE)`);
    const inDays = dayList.length > 0 ? sql`CAST(ts AS DATE) IN (${join(dayValues)})` : raw('1 = 0');
    const rollupInDays = dayList.length > 0 ? sql`day IN (${join(dayValues)})` : raw('1 = 0');
    const fresh = sql`${ofApp} AND ${received(current.watermark, upTo)} AND NOT (${inDays})`;
    const statements: Sql[] = [...TABLES];
    if (dayList.length > 0) {
      const whole = sql`${ofApp} AND ${received(null, upTo)} AND ${inDays}`;
      statements.push(
        sql`DELETE FROM ${T.events} WHERE ${ofApp} AND ${rollupInDays}`,
        sql`DELETE FROM ${T.installs} WHERE ${ofApp} AND ${rollupInDays}`,
        sql`DELETE FROM ${T.days} WHERE ${ofApp} AND ${rollupInDays}`,
        ...aggregate(whole),
        sql`INSERT INTO ${T.days} ${perDay(whole)}`,
      );
    }
    if (upTo > current.watermark)
      statements.push(
        ...aggregate(fresh),
        sql`INSERT INTO ${T.days} ${perDay(fresh)}
          ON CONFLICT (app, day) DO UPDATE SET events = ${T.days}.events + excluded.events,
            fragments = ${T.days}.fragments + 1`,
      );
    // Funnel starts: recompute the days whose chains may change — repaired days and days with new steps —
    // with the days before them that a window reaches from.
    const funnels = funnelsOf(catalog);
    if (funnels.length > 0) {
      const changed = new Set(dayList.map((day) => Date.parse(`${day}T00:00:00Z`)));
      if (upTo > current.watermark) {
        const stepDays = await store.query(sql`
          SELECT DISTINCT ${dialect.msBucket('day', dialect.epochMs(raw('ts')))} AS day
          FROM events
          WHERE ${ofApp} AND session_id <> '' AND ${received(current.watermark, upTo)}
            AND ${inList(raw('event'), [...new Set(funnels.flatMap((f) => f.steps))])}`);
        for (const row of stepDays) changed.add(toNumber(row.day));
      }
      for (const funnel of funnels) {
        const reach = Math.ceil(funnel.windowMs / DAY_MS);
        const days = [...changed].flatMap((day) =>
          Array.from({ length: reach + 1 }, (_, i) => day - i * DAY_MS),
        );
        statements.push(...restart(dialect, app, funnel, daysToSpans(days), upTo));
      }
    }
    statements.push(state);
    await store.maintain!(statements);
    return {
      app,
      mode: repair ? 'repair' : 'incremental',
      days: dayList.length,
      watermark: Math.max(upTo, current.watermark),
      ms: performance.now() - started,
    };
  };

  return {
    supported,
    writable,
    async state(app, catalog) {
      const row = await check(app);
      if (!row) return null;
      if (row.definition !== (await definitionOf(catalog)) || row.live !== row.events) return null;
      return { watermark: row.watermark, pending: row.pending };
    },
    refresh: (app, catalog) => shareRefresh(app, () => doRefresh(app, catalog)),
  };
}

/** Full UTC days inside [from, to) that no other cut splits: those can be read from the rollup. */
export function rollupDays(cuts: readonly number[]): [number, number][] {
  const points = [...new Set(cuts)].sort((a, b) => a - b);
  const spans: [number, number][] = [];
  for (let i = 0; i + 1 < points.length; i++) {
    const start = Math.ceil(points[i]! / DAY_MS) * DAY_MS;
    const end = Math.floor(points[i + 1]! / DAY_MS) * DAY_MS;
    if (start >= end) continue;
    const last = spans.at(-1);
    if (last && last[1] === start) last[1] = end;
    else spans.push([start, end]);
  }
  return spans;
}

/** `day` conditions for spans of days (for the rollup) — `isoDay` strings bound as values. */
export function daySpans(spans: readonly [number, number][]): Sql {
  if (spans.length === 0) return raw('1 = 0');
  return sql`(${join(
    spans.map(([a, b]) => sql`(day >= CAST(${isoDay(a)} AS DATE) AND day < CAST(${isoDay(b)} AS DATE))`),
    ' OR ',
  )})`;
}

/** The same spans as timestamp conditions on raw events. */
export function tsSpans(dialect: Dialect, spans: readonly [number, number][]): Sql {
  if (spans.length === 0) return raw('1 = 0');
  return sql`(${join(
    spans.map(([a, b]) => sql`(ts >= ${dialect.timestamp(a)} AND ts < ${dialect.timestamp(b)})`),
    ' OR ',
  )})`;
}
