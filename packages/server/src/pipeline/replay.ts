import { createHash } from 'node:crypto';
import type { AppRegistry } from '../config/registry-types.js';
import { DEFAULTS, type ServeConfig } from '../config/serve-config.js';
import { TelemarkError } from '../errors.js';
import { prepareMetriton } from '../ingest/metriton.js';
import { isRecord, type PreparedRequest, sentBytesOf } from '../ingest/prepared.js';
import { appNameOf, prepareSegment } from '../ingest/segment.js';
import { quarantinePages } from '../store/quarantine-pages.js';
import type {
  QuarantineEntry,
  QuarantineFilter,
  Store,
  StoredEvent,
  StoredQuarantineEntry,
} from '../store/types.js';
import { createEventBuilder, type EventBuilder } from './event-builder.js';
import { rewrittenLegacyEntry } from './legacy-quarantine.js';

/** Which entries a replay takes (`QuarantineFilter`'s): of an app (`''`: of no app), a reason, received since / until. */
export type ReplayFilter = Pick<QuarantineFilter, 'app' | 'reason' | 'since' | 'until'>;

export interface ReplayReport {
  /** Quarantine entries looked at. */
  readonly examined: number;
  /** Entries whose events are now stored (and which left the quarantine). */
  readonly replayed: number;
  readonly accepted: number;
  /** Events that were already stored (e.g. a replay that was interrupted and run again). */
  readonly duplicate: number;
  /** Entries still refused for the same reason: left as they were. */
  readonly stillRejected: number;
  /** Entries refused now for a different reason: replaced by entries with the new reason. */
  readonly reasonChanged: number;
  /**
   * Of `stillRejected`, whole requests refused for what no catalog changes (bad JSON or gzip, not a
   * batch, an unknown write key, a Metriton report of an application not registered when it came):
   * never re-judged.
   */
  readonly notReplayable: number;
  /**
   * Of `stillRejected`, entries of apps the registry replaying them does not know (a replay without the
   * collector's `--config`, or an app taken out of it): left untouched, not re-judged as keyless
   * messages of no app, which would lose their app and reason.
   */
  readonly unregistered: number;
  /** The apps of `unregistered`, sorted. */
  readonly unregisteredApps: readonly string[];
}

/**
 * Whole requests refused before their messages were judged, for what no catalog changes: a body that is
 * not JSON or not a batch, a write key nobody registered (and which quarantine does not keep). A replay
 * leaves them as they are — judged as messages they would get another reason, or pass as keyless.
 */
const NOT_REPLAYABLE: ReadonlySet<string> = new Set([
  'TMK_ERR_BODY_UNPARSEABLE',
  'TMK_ERR_BAD_GZIP',
  'TMK_ERR_BAD_BATCH',
  'TMK_ERR_BAD_WRITE_KEY',
]);

/**
 * Whether an entry is left as it is, never re-judged: a whole request in `NOT_REPLAYABLE`, or a Metriton
 * report of an application nobody registered when it came, kept with its base keys only (not its traits
 * nor the extra context: nothing said what they held). Replayed once the app is registered, it would be
 * stored without them, as another event than direct ingest stores (until 2026-11-27 it was, and counted
 * as replayed: a `connect` without its time, a CI run as an interactive one). Also a message refused as
 * too large before its size as sent was recorded (2026-11-29): its kept form, which leaves keys out,
 * cannot say whether it fits a limit.
 */
const leftAsItIs = (entry: StoredQuarantineEntry): boolean =>
  NOT_REPLAYABLE.has(entry.reason) ||
  (entry.protocol === 'metriton' && entry.reason === 'TMK_ERR_UNKNOWN_APP') ||
  (entry.reason === 'TMK_ERR_EVENT_TOO_LARGE' && sentBytesOf(entry.detail) === undefined);

/**
 * Entries a replay lists at a time, oldest first: what it holds in memory is one page (raw inputs
 * included) and the writes it has not made yet, whatever the quarantine's size. (Until 2026-11-28 it
 * listed the whole quarantine at once, up to 10,000,000 entries: 200,000 took 791 MB, and entries beyond
 * the cap were never looked at.)
 */
const PAGE_ENTRIES = 5_000;
/** Events per store.write() during a replay (a page's writes are made before the next page is read). */
const CHUNK_EVENTS = 10_000;

const tryParse = (raw: string): { ok: true; value: unknown } | { ok: false } => {
  try {
    return { ok: true, value: JSON.parse(raw) };
  } catch {
    return { ok: false };
  }
};

/**
 * The app an entry is of: its own, or for a keyless Segment message kept with no app (no write key, or
 * an app that takes none), the app it names in `context.app.name` — unless the app was refused as
 * unknown when it arrived. Undefined when the entry is of no app.
 */
function appOf(entry: StoredQuarantineEntry): string | undefined {
  if (entry.app !== '') return entry.app;
  if (entry.protocol === 'metriton' || entry.reason === 'TMK_ERR_UNKNOWN_APP') return undefined;
  const parsed = tryParse(entry.raw);
  return parsed.ok ? appNameOf(parsed.value) : undefined;
}

/**
 * The id of the entry that replaces `entry` with the rejection at index `at` of its replay, refused for
 * `reason`: derived from them, so a replay that is run again after a crash (on an engine where the
 * replacement and the removal of the old entry are not one transaction) writes the same entry, which the
 * store then does not store twice (`WriteBatch.quarantine`). UUID-shaped, like the ids stores make.
 */
export function replacementId(entry: StoredQuarantineEntry, at: number, reason: string): string {
  const h = createHash('sha256')
    .update(`telemark.replay\u0000${entry.id}\u0000${at}\u0000${reason}`)
    .digest('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20, 32)}`;
}

/**
 * The message size limit a replay judges by: the collector's (`limits.maxEventBytes`), so a message
 * refused as too large is not stored by a replay; a batch's count limit does not apply (one message).
 */
export type ReplayLimits = Pick<ServeConfig['limits'], 'maxEventBytes'>;

/** Re-run one quarantined input through today's pipeline (catalogs, registry), as of when it arrived. */
function reprocess(
  entry: StoredQuarantineEntry,
  registry: AppRegistry,
  builder: EventBuilder,
  limits: ReplayLimits,
): PreparedRequest | undefined {
  const parsed = tryParse(entry.raw);
  if (!parsed.ok) return undefined;
  const receivedAt = entry.receivedAt;
  if (entry.protocol === 'metriton') {
    const result = prepareMetriton(
      parsed.value,
      receivedAt,
      { registry, builder, limits },
      Buffer.byteLength(entry.raw),
    );
    return result.kind === 'prepared' ? result.prepared : undefined;
  }
  const kept = parsed.value;
  // A kept message is judged as one message of a batch: the `/v1/track` route would make a message
  // without a `type` (refused in a batch: TMK_ERR_UNSUPPORTED_CALL) a track call, and store it. A single
  // call's message was kept with the call its path named as its `type`. A whole batch body (kept by
  // versions that kept more of them) has a `batch` and no `type`.
  const isBatch = isRecord(kept) && Array.isArray(kept.batch) && kept.type === undefined;
  const body = isBatch ? kept : { batch: [kept] };
  // The operator vouches for a replay: a message that came with the app's write key is replayed as that app's.
  const app = entry.app ? registry.get(entry.app) : undefined;
  try {
    return prepareSegment(
      {
        route: 'batch',
        body,
        bodyBytes: Buffer.byteLength(entry.raw),
        headerKey: undefined,
        receivedAt,
        ...(app ? { app } : {}),
      },
      { registry, builder, limits: { ...limits, maxBatchEvents: Number.MAX_SAFE_INTEGER } },
    );
  } catch (error) {
    // A builder without the deployment's key (an offline replay) cannot store this entry: stop, said why.
    if (error instanceof TelemarkError && error.code === 'TMK_ERR_CONFIG_INVALID') throw error;
    return undefined;
  }
}

/**
 * `telemark quarantine replay`: re-validate quarantined inputs with the current catalogs (e.g. after a
 * catalog fix). What now passes is written (deduplicated like any ingest) and leaves the quarantine;
 * what is still refused for the same reason stays untouched; what is refused for another reason is
 * replaced by an entry with the new reason. Events and replacement entries are written with the
 * removal of the entries they replace (`WriteBatch.removeQuarantine`), so an interrupted replay run
 * again only finds duplicates, and no replacement is stored twice. Runs in the collector (its API) or on
 * a store the command opened; the store serialises its writes with ingest's either way.
 *
 * The quarantine is read oldest first in pages (`PAGE_ENTRIES`, `quarantinePages`), so memory is bounded
 * by a page, not by the quarantine's size. It examines
 * what was quarantined when it started: entries received later (the collector's ingest, meanwhile) wait
 * for the next replay, and its own replacement entries are never examined by it.
 */
export async function replayQuarantine(
  store: Store,
  registry: AppRegistry,
  filter: ReplayFilter = {},
  options: {
    builder?: EventBuilder;
    limits?: ReplayLimits;
    /**
     * Told the totals so far after each of the replay's writes and each page it examined (a long
     * replay's progress, also when it has nothing to write).
     */
    onProgress?: (soFar: ReplayReport) => void;
    /** Entries listed at a time (`PAGE_ENTRIES`); small in tests, to cross page ends. */
    pageSize?: number;
  } = {},
): Promise<ReplayReport> {
  const builder = options.builder ?? createEventBuilder();
  const limits = options.limits ?? DEFAULTS.limits;
  const pageSize = options.pageSize ?? PAGE_ENTRIES;
  if (!Number.isSafeInteger(pageSize) || pageSize < 1)
    throw new TelemarkError('TMK_ERR_BAD_PARAMETER', `pageSize must be a positive integer, got ${pageSize}`);
  // What arrives after the replay began is not its to examine (it would otherwise chase a collector that
  // keeps quarantining, page after page): `quarantinePages` ends just after the newest entry it finds at
  // its start. Not this process's clock: an offline replay on a machine whose clock is behind the
  // collectors' would skip their latest entries (until 2026-11-28 it did).
  let replayed = 0;
  let accepted = 0;
  let duplicate = 0;
  let stillRejected = 0;
  let reasonChanged = 0;
  let notReplayable = 0;
  const unregisteredApps = new Set<string>();
  let unregistered = 0;
  let events: StoredEvent[] = [];
  let quarantine: (QuarantineEntry & { id: string })[] = [];
  let done: string[] = [];
  let examined = 0;
  // A replacement keeps the receive time of the entry it replaces, so one at the receive time where a
  // page ends, with an id that sorts after that page's last, is in a later page: it must not be judged
  // again (it would count twice, and be replaced again). Kept by id until the pages have gone past its
  // receive time: the ones of a page's last receive time at most, mostly.
  const replacements = new Map<string, number>();
  // Whether the totals changed since `onProgress` was last told them.
  let untold = false;
  const report = (): ReplayReport => ({
    examined,
    replayed,
    accepted,
    duplicate,
    stillRejected,
    reasonChanged,
    notReplayable,
    unregistered,
    unregisteredApps: [...unregisteredApps].sort(),
  });
  const tell = () => {
    if (!untold) return;
    untold = false;
    options.onProgress?.(report());
  };

  const flush = async () => {
    if (events.length === 0 && quarantine.length === 0 && done.length === 0) return;
    // One write: the events, the replacement entries, the removal of the entries they replace, and the
    // `accepted` / `duplicate` counters of the events, with the `clamped` / `skewed` /
    // `dropped_by_client` of the accepted ones (`statusCounters`: only the store knows which are
    // duplicates; not `rejected`: the entries were counted when they arrived). (Until 2026-11-27 a replay
    // counted neither clamped, skewed nor client-dropped events: the data-health view missed them; until
    // 2026-11-29 it counted them for duplicates too.) On
    // DuckDB that is one transaction; on ClickHouse the removal follows the inserts, and a replay run again
    // after a crash between them finds its events stored and writes the same replacement ids, which the
    // store does not store twice. (Until 2026-11-27 the removal was a second call: a crash before it left
    // the old entry, and every run again added one more replacement.)
    const { statuses } = await store.write({
      events,
      quarantine,
      counters: [],
      statusCounters: true,
      removeQuarantine: done,
    });
    for (const status of statuses) {
      if (status === 'duplicate') duplicate++;
      else accepted++;
    }
    events = [];
    quarantine = [];
    done = [];
    untold = true;
    tell();
  };

  const judge = async (entry: StoredQuarantineEntry) => {
    examined++;
    untold = true;
    // A bad-gzip body kept as sent, in base64, by collectors before 2026-11-29: kept again as today
    // (scrubbed, findable by erasure). Still not replayable, so counted below as before.
    const rewritten = rewrittenLegacyEntry(entry, builder);
    if (rewritten) {
      quarantine.push(rewritten);
      replacements.set(rewritten.id, rewritten.receivedAt);
      done.push(entry.id);
    }
    if (leftAsItIs(entry)) {
      notReplayable++;
      stillRejected++;
      return;
    }
    const owner = appOf(entry);
    if (owner !== undefined && !registry.get(owner)) {
      unregisteredApps.add(owner);
      unregistered++;
      stillRejected++;
      return;
    }
    // Refused as too large: judged by its size as sent, not by the kept form, which leaves keys out
    // (until 2026-11-29 the kept form was measured, and a message over the limit by its `integrations` or
    // Metriton's indentation was stored).
    if (entry.reason === 'TMK_ERR_EVENT_TOO_LARGE' && sentBytesOf(entry.detail)! > limits.maxEventBytes) {
      stillRejected++;
      return;
    }
    const prepared = reprocess(entry, registry, builder, limits);
    if (!prepared) {
      stillRejected++;
      return;
    }
    const rejections = prepared.quarantine;
    if (rejections.length === 0) {
      replayed++;
    } else if (
      rejections.length === 1 &&
      prepared.events.length === 0 &&
      rejections[0]?.reason === entry.reason
    ) {
      stillRejected++;
      return;
    } else {
      reasonChanged++;
      rejections.forEach((q, at) => {
        const id = replacementId(entry, at, q.reason);
        quarantine.push({ ...q, id });
        replacements.set(id, q.receivedAt);
      });
    }
    for (const e of prepared.events) events.push(e);
    done.push(entry.id);
    if (events.length >= CHUNK_EVENTS) await flush();
  };

  for await (const page of quarantinePages(store, filter, pageSize)) {
    for (const entry of page) if (!replacements.has(entry.id)) await judge(entry);
    // What the page leaves to write is written before the next page is read: a replay holds one page's
    // writes at most. (Until 2026-11-28 a replay of entries all refused for a new reason — no events —
    // held every replacement, and wrote them all in one write at its end.)
    await flush();
    tell();
    const last = page.at(-1);
    if (last)
      for (const [id, receivedAt] of replacements) if (receivedAt < last.receivedAt) replacements.delete(id);
  }
  return report();
}
