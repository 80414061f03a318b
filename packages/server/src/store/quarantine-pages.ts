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

/** One page of the newest-first list (`newestQuarantinePage`). */
export interface NewestQuarantinePage {
  /** Up to `limit` entries, newest first (receive time, then id, both descending). */
  readonly entries: StoredQuarantineEntry[];
  /** Where the next page starts (the last entry's position), when entries follow. */
  readonly next?: QuarantinePosition;
  /** The length (ms) of the next page's first window of receive time: the `hint` to give it. */
  readonly span: number;
}

/** The first window of a page given no hint: an hour. */
const FIRST_SPAN = 3_600_000;
/** Short windows in a row after which a page looks for the next older entry rather than doubling on. */
const SHORT_WINDOWS = 6;
/** The longest window (about 35 years): its bounds stay whole numbers of ms however many windows a page reads. */
const LONGEST_SPAN = 2 ** 40;

/**
 * One page of the entries `selection` selects, newest first (receive time, then id, both descending),
 * after `selection.after` when given: exactly what `listQuarantine({ ...selection, newestFirst: true,
 * limit })` lists, for a person reading a list page by page (an HTTP request a page: nothing is kept
 * between pages but the position and `hint`, the `span` the previous page gave).
 *
 * Each listing is bounded in receive time as well as by the position: a window ending just after the
 * position (or at `selection.until`; open for the newest entries), `hint` long (an hour without one),
 * then, while windows come back short, the one before it, twice as long, down to `selection.since`.
 * After a few short windows in a row (a gap, the end of the quarantine) one listing of one entry before
 * the window finds the next older entry: none, and the page is complete; else the next window reaches
 * back to it. An engine sorts every entry a listing selects to find its first `limit`, and the position
 * alone (`receivedAt < t OR (receivedAt = t AND id < i)`) bounds no scan: a page of a quarantine of 1M
 * entries sorted all of them, however deep it was (about 0.2 s on DuckDB). In a window, DuckDB's zone
 * maps and ClickHouse's primary key skip what lies outside it: a few ms.
 */
export async function newestQuarantinePage(
  store: Pick<Store, 'listQuarantine'>,
  selection: QuarantineSelection & { readonly after?: QuarantinePosition },
  limit: number,
  hint?: number,
): Promise<NewestQuarantinePage> {
  const { after, ...chosen } = selection;
  const floor = chosen.since;
  // One more than asked: whether a next page has anything.
  const wanted = limit + 1;
  // The window's end (exclusive): just after the position (entries of its receive time may follow it),
  // else the selection's; none for the newest entries (whenever they were received).
  let to =
    after === undefined
      ? chosen.until
      : Math.min(chosen.until ?? Number.POSITIVE_INFINITY, after.receivedAt + 1);
  let span =
    hint !== undefined && Number.isSafeInteger(hint) && hint > 0 ? Math.min(hint, LONGEST_SPAN) : FIRST_SPAN;
  // The window's start when not `to - span` (the next older entry's time, once looked for).
  let reach: number | undefined;
  let short = 0;
  const found: StoredQuarantineEntry[] = [];
  for (;;) {
    const start = reach ?? (to ?? Date.now()) - span;
    const since = floor === undefined ? start : Math.max(floor, start);
    found.push(
      ...(await store.listQuarantine({
        ...chosen,
        since,
        ...(to !== undefined ? { until: to } : {}),
        ...(after !== undefined ? { after } : {}),
        limit: wanted - found.length,
        newestFirst: true,
      })),
    );
    if (found.length >= wanted || (floor !== undefined && since <= floor)) break;
    // Short: the window before it, twice as long.
    to = since;
    span = Math.min(2 * span, LONGEST_SPAN);
    reach = undefined;
    if (++short < SHORT_WINDOWS) continue;
    // Short again and again: where the next older entry is, if there is one.
    short = 0;
    const [older] = await store.listQuarantine({ ...chosen, until: to, newestFirst: true, limit: 1 });
    if (older === undefined) break;
    reach = older.receivedAt + 1 - span;
  }
  const entries = found.slice(0, limit);
  const first = entries[0];
  const last = entries.at(-1);
  if (found.length <= limit || !first || !last) return { entries, span };
  // The next page's window: twice as long as this page took, from its position (or first entry).
  const took = (after?.receivedAt ?? first.receivedAt) - last.receivedAt;
  return {
    entries,
    next: { receivedAt: last.receivedAt, id: last.id },
    span: Math.min(Math.max(1, 2 * took), LONGEST_SPAN),
  };
}
