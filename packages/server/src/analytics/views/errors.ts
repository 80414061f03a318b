import { TelemarkError } from '../../errors.js';
import { raw, sql } from '../../store/sql.js';
import { alignSeries, bucketStarts, iso } from '../buckets.js';
import { OTHER, splitByK } from '../fold.js';
import { eventFilter, inList, lit, toNumber, toText, type ViewContext } from '../query.js';
import { source } from '../source.js';
import { compareVersions, newestVersion, oldestVersion, sortVersionsDescending } from '../versions.js';

export interface ErrorGroup {
  readonly fingerprint: string;
  /** The event of the latest occurrence. */
  readonly event: string;
  /** The scrubbed text of the latest occurrence. */
  readonly sample: string;
  readonly count: number;
  readonly installs: number;
  readonly firstVersion: string;
  readonly lastVersion: string;
  readonly firstSeen: string;
  readonly lastSeen: string;
  readonly buckets: string[];
  readonly trend: number[];
  /**
   * Regression flag: the newest version with data in the range, when this fingerprint first appeared in it —
   * never seen, in any stored data of the app, in an older version.
   */
  readonly newInVersion: string | null;
}

export interface ErrorsResult {
  /** The newest app version with data in the range (what `newInVersion` compares with). */
  readonly newestVersion: string | null;
  readonly errors: ErrorGroup[];
}

const ERROR_ROWS = sql`error_fingerprint <> ''`;
/** "All stored data" for the regression check. */
const END_OF_DATA = Date.UTC(2100, 0, 1);

/** Top errors grouped by fingerprint, with version span, trend and a "new in version X" regression flag. */
export async function errors(ctx: ViewContext): Promise<ErrorsResult> {
  const { dialect: d, filters: f, options } = ctx;
  const events = options.events.length > 0 ? { events: options.events } : {};
  const src = source(ctx, { range: [f.from, f.to], ...events });
  const [top, versionRows] = await Promise.all([
    ctx.store.query(sql`
      SELECT error_fingerprint AS fp, sum(n) AS n_events, ${d.countDistinct(raw('install_key'))} AS n_installs,
        min(first_ms) AS first_seen, max(last_ms) AS last_seen, ${d.argMax(raw('event'), raw('last_ms'))} AS last_event
      FROM (${src}) r WHERE ${ERROR_ROWS}
      GROUP BY error_fingerprint
      ORDER BY n_events DESC, fp
      LIMIT ${lit(options.limit)}`),
    ctx.store.query(
      sql`SELECT DISTINCT app_version AS v FROM (${source(ctx, { range: [f.from, f.to], level: 'install' })}) r`,
    ),
  ]);
  const newest = newestVersion(versionRows.map((r) => toText(r.v)));
  const starts = bucketStarts(f.interval, f.from, f.to);
  if (top.length === 0) return { newestVersion: newest, errors: [] };

  const fingerprints = top.map((r) => toText(r.fp));
  const inTop = inList(raw('error_fingerprint'), fingerprints);
  // The latest scrubbed text of each: only raw events have it, so read just the span of the last occurrences
  // (plus a second: engines that keep whole seconds round the bound down).
  const lastSeen = top.map((r) => toNumber(r.last_seen));
  const [perVersionBucket, samples] = await Promise.all([
    ctx.store.query(sql`
      SELECT error_fingerprint AS fp, app_version AS v, ${d.msBucket(f.interval, raw('t_ms'))} AS bucket, sum(n) AS n_events
      FROM (${src}) r WHERE ${inTop}
      GROUP BY error_fingerprint, app_version, bucket`),
    ctx.store.query(sql`
      SELECT error_fingerprint AS fp, ${d.argMax(raw('error_text'), raw('ts'))} AS sample
      FROM events
      WHERE ${eventFilter(ctx, { range: [Math.min(...lastSeen), Math.min(Math.max(...lastSeen) + 1000, f.to)] })} AND ${inTop}${
        options.events.length > 0 ? sql` AND ${inList(raw('event'), options.events)}` : raw('')
      }
      GROUP BY error_fingerprint`),
  ]);
  const versionsOf = new Map<string, Set<string>>();
  const trendOf = new Map<string, Map<number, number>>();
  for (const row of perVersionBucket) {
    const fp = toText(row.fp);
    if (!versionsOf.has(fp)) versionsOf.set(fp, new Set());
    versionsOf.get(fp)!.add(toText(row.v));
    if (!trendOf.has(fp)) trendOf.set(fp, new Map());
    const trend = trendOf.get(fp)!;
    const bucket = toNumber(row.bucket);
    trend.set(bucket, (trend.get(bucket) ?? 0) + toNumber(row.n_events));
  }
  const sampleOf = new Map(samples.map((r) => [toText(r.fp), toText(r.sample)]));

  // Candidates first appear in the newest version within the range; confirm over all stored data of the
  // app (any date, version or environment) that no older version ever had them.
  const candidates = fingerprints.filter(
    (fp) => newest !== null && oldestVersion(versionsOf.get(fp) ?? []) === newest,
  );
  const regressions = new Set<string>();
  if (candidates.length > 0 && newest !== null) {
    const everything = source(ctx, { range: [0, END_OF_DATA], env: false, versions: false, os: false });
    const history = await ctx.store.query(sql`
      SELECT DISTINCT error_fingerprint AS fp, app_version AS v FROM (${everything}) r
      WHERE ${inList(raw('error_fingerprint'), candidates)}`);
    const older = new Set(
      history.filter((r) => compareVersions(toText(r.v), newest) < 0).map((r) => toText(r.fp)),
    );
    for (const fp of candidates) if (!older.has(fp)) regressions.add(fp);
  }

  return {
    newestVersion: newest,
    errors: top.map((row) => {
      const fp = toText(row.fp);
      const versions = versionsOf.get(fp) ?? [];
      return {
        fingerprint: fp,
        event: toText(row.last_event),
        sample: sampleOf.get(fp) ?? '',
        count: toNumber(row.n_events),
        installs: toNumber(row.n_installs),
        firstVersion: oldestVersion(versions) ?? '',
        lastVersion: newestVersion(versions) ?? '',
        firstSeen: iso(toNumber(row.first_seen)),
        lastSeen: iso(toNumber(row.last_seen)),
        buckets: starts.map(iso),
        trend: alignSeries(starts, trendOf.get(fp) ?? new Map()),
        newInVersion: regressions.has(fp) ? newest : null,
      };
    }),
  };
}

export interface ErrorDetail {
  readonly fingerprint: string;
  readonly event: string;
  readonly count: number;
  readonly installs: number;
  readonly firstSeen: string;
  readonly lastSeen: string;
  readonly versions: { version: string; count: number }[];
  /** Occurrences per OS; OS values seen by fewer than k installs fold into one `other` row (k-anonymity). */
  readonly os: { value: string; other: boolean; count: number }[];
  readonly samples: { timestamp: string; appVersion: string; osName: string; event: string; text: string }[];
}

/**
 * The drill-down's OS list under the breakdowns' k-anonymity rule: an OS seen by fewer than k installs (with
 * this error) is not shown by name; its occurrences go to one `other` row, last. Counts add up; installs are
 * not returned (the row's count is all the panel shows).
 */
function foldOs(
  rows: readonly { value: string; count: number; installs: number }[],
  k: number,
): { value: string; other: boolean; count: number }[] {
  const { kept, folded } = splitByK(rows, k);
  const shown = kept
    .map((r) => ({ value: r.value, other: false, count: r.count }))
    .sort((a, b) => b.count - a.count || (a.value < b.value ? -1 : 1));
  if (folded.length === 0) return shown;
  return [...shown, { value: OTHER, other: true, count: folded.reduce((sum, r) => sum + r.count, 0) }];
}

/** Drill-down into one fingerprint: where it happens, and its latest scrubbed samples. */
export async function errorDetail(ctx: ViewContext, fingerprint: string): Promise<ErrorDetail> {
  const { dialect: d, options } = ctx;
  const where = sql`${eventFilter(ctx)} AND error_fingerprint = ${fingerprint}`;
  const [[summary = {}], versions, os, samples] = await Promise.all([
    ctx.store.query(sql`
      SELECT count(*) AS n, ${d.countDistinct(d.installKey)} AS n_installs,
        ${d.epochMs(raw('min(ts)'))} AS first_ms, ${d.epochMs(raw('max(ts)'))} AS last_ms,
        ${d.argMax(raw('event'), raw('ts'))} AS last_event
      FROM events WHERE ${where}`),
    ctx.store.query(
      sql`SELECT app_version AS v, count(*) AS n FROM events WHERE ${where} GROUP BY app_version`,
    ),
    ctx.store.query(sql`
      SELECT os_name AS v, count(*) AS n, ${d.countDistinct(d.installKey)} AS n_installs
      FROM events WHERE ${where} GROUP BY os_name`),
    ctx.store.query(sql`
      SELECT ${d.epochMs(raw('ts'))} AS t, app_version, os_name, event, error_text FROM events WHERE ${where}
      ORDER BY ts DESC, message_id LIMIT ${raw(String(options.limit))}`),
  ]);
  const count = toNumber(summary.n);
  if (count === 0)
    throw new TelemarkError('TMK_ERR_NO_SUCH_ERROR', `${JSON.stringify(fingerprint)} in ${ctx.filters.app}`);
  const versionCounts = new Map(versions.map((r) => [toText(r.v), toNumber(r.n)]));
  return {
    fingerprint,
    event: toText(summary.last_event),
    count,
    installs: toNumber(summary.n_installs),
    firstSeen: iso(toNumber(summary.first_ms)),
    lastSeen: iso(toNumber(summary.last_ms)),
    versions: sortVersionsDescending(versionCounts.keys()).map((version) => ({
      version,
      count: versionCounts.get(version)!,
    })),
    os: foldOs(
      os.map((r) => ({ value: toText(r.v), count: toNumber(r.n), installs: toNumber(r.n_installs) })),
      ctx.filters.k,
    ),
    samples: samples.map((r) => ({
      timestamp: iso(toNumber(r.t)),
      appVersion: toText(r.app_version),
      osName: toText(r.os_name),
      event: toText(r.event),
      text: toText(r.error_text),
    })),
  };
}
