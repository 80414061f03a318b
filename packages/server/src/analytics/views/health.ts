import { raw, sql } from '../../store/sql.js';
import { alignSeries, bucketStart, bucketStarts, DAY_MS, type Interval, iso } from '../buckets.js';
import {
  eventFilter,
  eventsTableFor,
  ratio,
  seconds,
  toNumber,
  toNumberOrNull,
  toText,
  type ViewContext,
} from '../query.js';
import { source } from '../source.js';

/** Up to this many events the lag quantiles are exact; beyond, sampled (8192 values). */
export const EXACT_LAG_EVENTS = 200_000;

export interface HealthResult {
  readonly events: number;
  /**
   * Seconds from the event's (skew-corrected) time to its arrival; includes time spent in client spools.
   * Exact up to EXACT_LAG_EVENTS events in the selection, estimated from a sample of 8192 above.
   */
  readonly ingestLagSeconds: { p50: number | null; p90: number | null; p99: number | null };
  readonly rejects: { reason: string; count: number }[];
  readonly rejected: number;
  readonly duplicates: number;
  readonly clamped: number;
  readonly skewed: number;
  readonly rateLimited: number;
  readonly droppedByClients: number;
  readonly ciShare: number | null;
  readonly testShare: number | null;
  /** Quarantine entries of the app received in the range. */
  readonly quarantine: number;
  readonly series: { buckets: string[]; accepted: number[]; duplicate: number[]; rejected: number[] };
}

/**
 * Data health. Ingest counters are per UTC day, so this view's range and series are whole days (an hourly
 * interval is shown per day). It looks at every environment class — the CI and test shares are its point —
 * while the version and OS filters still narrow the event figures.
 */
export async function health(ctx: ViewContext): Promise<HealthResult> {
  const { dialect: d, filters: f } = ctx;
  const interval: Interval = f.interval === 'hour' ? 'day' : f.interval;
  const firstDay = bucketStart('day', f.from);
  const where = eventFilter(ctx, { env: false });
  const lagTable = eventsTableFor(ctx, { env: false });
  const lag = sql`(${d.epochMs(raw('received_at'))} - ${d.epochMs(raw('ts'))})`;
  const always = raw('1 = 1');
  const counterWhere = sql`app = ${f.app} AND day >= ${d.date(firstDay)} AND day < ${d.date(Math.ceil(f.to / DAY_MS) * DAY_MS)}`;
  const n = raw('n');
  const [events = {}] = await ctx.store.query(sql`
    SELECT sum(n) AS n_events, ${d.sumIf(n, raw("env_class = 'ci'"))} AS n_ci, ${d.sumIf(n, raw("env_class = 'test'"))} AS n_test
    FROM (${source(ctx, { range: [f.from, f.to], env: false, level: 'install' })}) r`);
  // Lag needs every event's two times: exact up to EXACT_LAG_EVENTS, estimated from a sample above.
  const quantile = toNumber(events.n_events) <= EXACT_LAG_EVENTS ? d.quantileIf : d.approxQuantileIf;
  const [[lags = {}], counters, perBucket, [quarantine = {}]] = await Promise.all([
    ctx.store.query(sql`
      SELECT ${quantile(lag, 0.5, always)} AS p50, ${quantile(lag, 0.9, always)} AS p90,
        ${quantile(lag, 0.99, always)} AS p99
      FROM ${lagTable} WHERE ${where}`),
    ctx.store.query(sql`
      SELECT kind, reason, sum(count) AS n FROM ingest_counters WHERE ${counterWhere} GROUP BY kind, reason`),
    ctx.store.query(sql`
      SELECT ${d.dateBucketMs(interval, raw('day'))} AS bucket, kind, sum(count) AS n
      FROM ingest_counters
      WHERE ${counterWhere} AND kind IN ('accepted', 'duplicate', 'rejected')
      GROUP BY bucket, kind`),
    ctx.store.query(sql`
      SELECT count(*) AS n FROM quarantine
      WHERE app = ${f.app} AND received_at >= ${d.timestamp(f.from)} AND received_at < ${d.timestamp(f.to)}`),
  ]);
  const total = (kind: string) =>
    counters.filter((r) => toText(r.kind) === kind).reduce((sum, r) => sum + toNumber(r.n), 0);
  const rejects = counters
    .filter((r) => toText(r.kind) === 'rejected')
    .map((r) => ({ reason: toText(r.reason), count: toNumber(r.n) }))
    .sort((a, b) => b.count - a.count || (a.reason < b.reason ? -1 : 1));
  const starts = bucketStarts(interval, f.from, f.to);
  const seriesOf = (kind: string) =>
    alignSeries(
      starts,
      new Map(
        perBucket.filter((r) => toText(r.kind) === kind).map((r) => [toNumber(r.bucket), toNumber(r.n)]),
      ),
    );
  const eventCount = toNumber(events.n_events);
  return {
    events: eventCount,
    ingestLagSeconds: {
      p50: seconds(toNumberOrNull(lags.p50)),
      p90: seconds(toNumberOrNull(lags.p90)),
      p99: seconds(toNumberOrNull(lags.p99)),
    },
    rejects,
    rejected: total('rejected'),
    duplicates: total('duplicate'),
    clamped: total('clamped'),
    skewed: total('skewed'),
    rateLimited: total('rate_limited'),
    droppedByClients: total('dropped_by_client'),
    ciShare: ratio(toNumber(events.n_ci), eventCount),
    testShare: ratio(toNumber(events.n_test), eventCount),
    quarantine: toNumber(quarantine.n),
    series: {
      buckets: starts.map(iso),
      accepted: seriesOf('accepted'),
      duplicate: seriesOf('duplicate'),
      rejected: seriesOf('rejected'),
    },
  };
}
