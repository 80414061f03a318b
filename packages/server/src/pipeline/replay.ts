import type { AppRegistry } from '../config/registry-types.js';
import { prepareMetriton } from '../ingest/metriton.js';
import { isRecord, type PreparedRequest } from '../ingest/prepared.js';
import { prepareSegment } from '../ingest/segment.js';
import type { QuarantineEntry, Store, StoredEvent, StoredQuarantineEntry } from '../store/types.js';
import { CounterSet, utcDay } from './counters.js';
import { createEventBuilder, type EventBuilder } from './event-builder.js';

export interface ReplayFilter {
  readonly app?: string;
  readonly reason?: string;
}

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

/** Everything in the quarantine is listed at once; the quarantine of one collector is not that large. */
const LIST_LIMIT = 10_000_000;
/** Events per store.write() during a replay. */
const CHUNK_EVENTS = 10_000;

const tryParse = (raw: string): { ok: true; value: unknown } | { ok: false } => {
  try {
    return { ok: true, value: JSON.parse(raw) };
  } catch {
    return { ok: false };
  }
};

/** Re-run one quarantined input through today's pipeline (catalogs, registry), as of when it arrived. */
function reprocess(
  entry: StoredQuarantineEntry,
  registry: AppRegistry,
  builder: EventBuilder,
): PreparedRequest | undefined {
  const parsed = tryParse(entry.raw);
  if (!parsed.ok) return undefined;
  const receivedAt = entry.receivedAt;
  if (entry.protocol === 'metriton') {
    const result = prepareMetriton(parsed.value, receivedAt, { registry, builder });
    return result.kind === 'prepared' ? result.prepared : undefined;
  }
  const body = parsed.value;
  const isBatch = isRecord(body) && Array.isArray(body.batch);
  // The operator vouches for a replay: a message that came with the app's write key is replayed as that app's.
  const app = entry.app ? registry.get(entry.app) : undefined;
  try {
    return prepareSegment(
      {
        route: isBatch ? 'batch' : 'track',
        body,
        bodyBytes: entry.raw.length,
        headerKey: undefined,
        receivedAt,
        ...(app ? { app } : {}),
      },
      {
        registry,
        builder,
        limits: { maxEventBytes: Number.MAX_SAFE_INTEGER, maxBatchEvents: Number.MAX_SAFE_INTEGER },
      },
    );
  } catch {
    return undefined;
  }
}

/**
 * `telemark quarantine replay`: re-validate quarantined inputs with the current catalogs (e.g. after a
 * catalog fix). What now passes is written (deduplicated like any ingest) and leaves the quarantine;
 * what is still refused for the same reason stays untouched; what is refused for another reason is
 * replaced by an entry with the new reason. Events are written before entries are removed, so an
 * interrupted replay run again only finds duplicates. Runs in the collector (its API) or on a store the
 * command opened; the store serialises its writes with ingest's either way.
 */
export async function replayQuarantine(
  store: Store,
  registry: AppRegistry,
  filter: ReplayFilter = {},
  options: { builder?: EventBuilder } = {},
): Promise<ReplayReport> {
  const builder = options.builder ?? createEventBuilder();
  const entries = await store.listQuarantine({ ...filter, limit: LIST_LIMIT });
  let replayed = 0;
  let accepted = 0;
  let duplicate = 0;
  let stillRejected = 0;
  let reasonChanged = 0;
  let events: StoredEvent[] = [];
  let quarantine: QuarantineEntry[] = [];
  let done: string[] = [];
  let counters = new CounterSet();

  const flush = async () => {
    if (events.length === 0 && quarantine.length === 0 && done.length === 0) return;
    const { statuses } = await store.write({ events, quarantine, counters: [] });
    statuses.forEach((status, i) => {
      const e = events[i] as StoredEvent;
      counters.add(utcDay(e.receivedAt), e.app, status, '');
      if (status === 'duplicate') duplicate++;
      else accepted++;
    });
    if (counters.size > 0) await store.write({ events: [], quarantine: [], counters: counters.take() });
    if (done.length > 0) await store.removeQuarantine(done);
    events = [];
    quarantine = [];
    done = [];
    counters = new CounterSet();
  };

  for (const entry of entries) {
    const prepared = NOT_REPLAYABLE.has(entry.reason) ? undefined : reprocess(entry, registry, builder);
    if (!prepared) {
      stillRejected++;
      continue;
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
      continue;
    } else {
      reasonChanged++;
      for (const q of rejections) quarantine.push(q);
    }
    for (const e of prepared.events) events.push(e);
    done.push(entry.id);
    if (events.length >= CHUNK_EVENTS) await flush();
  }
  await flush();
  return { examined: entries.length, replayed, accepted, duplicate, stillRejected, reasonChanged };
}
