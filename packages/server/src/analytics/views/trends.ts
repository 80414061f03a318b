import { raw, sql } from '../../store/sql.js';
import { alignSeries, bucketStarts, iso } from '../buckets.js';
import { toNumber, toText, type ViewContext } from '../query.js';
import { source } from '../source.js';

export interface TrendsResult {
  readonly buckets: string[];
  readonly series: { event: string; total: number; events: number[]; installs: number[] }[];
}

/** Events and distinct installs per event per bucket. Without `event`, every event that has data. */
export async function trends(ctx: ViewContext): Promise<TrendsResult> {
  const { dialect: d, filters: f, options } = ctx;
  const starts = bucketStarts(f.interval, f.from, f.to);
  const src = source(ctx, {
    range: [f.from, f.to],
    grain: f.interval === 'hour' ? 'hour' : 'day',
    ...(options.events.length > 0 ? { events: options.events } : {}),
  });
  const rows = await ctx.store.query(sql`
    SELECT event, ${d.msBucket(f.interval, raw('t_ms'))} AS bucket, sum(n) AS n_events,
      ${d.countDistinct(raw('install_key'))} AS n_installs
    FROM (${src}) r
    GROUP BY event, bucket`);
  const byEvent = new Map<
    string,
    { events: Map<number, number>; installs: Map<number, number>; total: number }
  >();
  for (const event of options.events)
    byEvent.set(event, { events: new Map(), installs: new Map(), total: 0 });
  for (const row of rows) {
    const event = toText(row.event);
    let entry = byEvent.get(event);
    if (!entry) {
      entry = { events: new Map(), installs: new Map(), total: 0 };
      byEvent.set(event, entry);
    }
    const bucket = toNumber(row.bucket);
    entry.events.set(bucket, toNumber(row.n_events));
    entry.installs.set(bucket, toNumber(row.n_installs));
    entry.total += toNumber(row.n_events);
  }
  const series = [...byEvent].map(([event, e]) => ({
    event,
    total: e.total,
    events: alignSeries(starts, e.events),
    installs: alignSeries(starts, e.installs),
  }));
  if (options.events.length === 0)
    series.sort((a, b) => b.total - a.total || (a.event < b.event ? -1 : a.event > b.event ? 1 : 0));
  return { buckets: starts.map(iso), series };
}
