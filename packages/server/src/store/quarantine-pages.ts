/**
 * @internal Reading a whole quarantine (a replay, a migration) a page at a time, oldest first, in
 * windows of receive time the pages size themselves.
 */
import type { QuarantineFilter, QuarantinePosition, Store, StoredQuarantineEntry } from './types.js';

/** Which entries: `QuarantineFilter`'s selection, without its paging. */
export type QuarantineSelection = Pick<QuarantineFilter, 'app' | 'reason' | 'since' | 'until'>;

/**
 * The entries `selection` selects, oldest first (receive time, then id), `pageSize` at a time. The
 * consumer may write between pages: each page is asked for once the previous one is dealt with, after
 * the last entry it held (`QuarantineFilter.after`), so removals do not shift it.
 *
 * After the first page each listing is bounded in receive time as well, to a window about twice as long
 * as the last full page took, and grown while windows come back short. An engine sorts every entry a
 * listing selects to find its first `pageSize`: with only the position as a bound, a page near the
 * start of a quarantine of n entries sorted all n, and reading it whole cost n²/pageSize (1M entries in
 * pages of 5,000: 25 s against 11 s for one listing on DuckDB). With the window, DuckDB's zone maps and
 * ClickHouse's primary key skip what lies outside it, and a page costs about a page.
 */
export async function* quarantinePages(
  store: Pick<Store, 'listQuarantine'>,
  selection: QuarantineSelection,
  pageSize: number,
): AsyncGenerator<StoredQuarantineEntry[]> {
  // Where to stop: just after the newest entry selected. The windows need an end to grow towards, and
  // one at the newest entry spares them doubling through the empty time after it.
  const [newest] = await store.listQuarantine({ ...selection, newestFirst: true, limit: 1 });
  if (!newest) return;
  const end = newest.receivedAt + 1;
  // The window's start (inclusive), the last entry taken (within it), and its length in ms.
  let from = selection.since;
  let after: QuarantinePosition | undefined;
  let span: number | undefined;
  for (;;) {
    const to = from === undefined || span === undefined ? end : Math.min(end, from + span);
    const page = await store.listQuarantine({
      ...selection,
      ...(from !== undefined ? { since: from } : {}),
      until: to,
      ...(after ? { after } : {}),
      limit: pageSize,
    });
    if (page.length > 0) yield page;
    const first = page[0];
    const last = page.at(-1);
    if (first && last && page.length >= pageSize) {
      // Full: more may follow in this window. The next one is as long as twice what this page took.
      span = Math.max(1, 2 * (last.receivedAt - (from ?? first.receivedAt)));
      from = last.receivedAt;
      after = { receivedAt: last.receivedAt, id: last.id };
      continue;
    }
    // The window holds nothing more: the next starts where it ended, twice as long (across a gap).
    if (to >= end) return;
    from = to;
    after = undefined;
    span = 2 * (span ?? 1);
  }
}
