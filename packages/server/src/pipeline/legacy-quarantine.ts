import { createHash } from 'node:crypto';
import { notesOf, TelemarkError } from '../errors.js';
import { keptBadGzip } from '../ingest/prepare-body.js';
import { type Keeper, NOT_REPRESENTABLE_PREFIX } from '../ingest/prepared.js';
import { type QuarantineSelection, quarantinePages } from '../store/quarantine-pages.js';
import type { QuarantineEntry, Store, StoredQuarantineEntry } from '../store/types.js';

/**
 * How collectors before 2026-11-29 kept a body refused as bad gzip: `base64:` and its first 24 KB as
 * sent. Such an entry holds the sender's user ids and addresses unscrubbed, and an erasure, which finds
 * an install by its id in the kept text (`store/erasure.ts`), cannot see them in base64 (nor in gzip):
 * `telemark delete` reported the install erased while these entries kept it.
 */
const LEGACY_PREFIX = 'base64:';
const REASON = 'TMK_ERR_BAD_GZIP';
/** The most of a legacy body that is read: it kept 24 KB as sent, which inflate to more. */
const MAX_READABLE_BYTES = 1024 * 1024;
/** Entries read at a time: legacy ones are few (bad gzip is rare), but a page is held in memory. */
const PAGE_ENTRIES = 1_000;

/**
 * The text a legacy bad-gzip entry is kept as today (`keptBadGzip`: what can be read of the body, kept
 * by the rules of any refused body, scrubbed, install ids as their pseudonyms); undefined for any other
 * entry, or when it cannot be kept so (the entry is then left as it is). Throws `keeper`'s error when
 * an install id in it cannot be kept (one that needs the deployment's key, without it:
 * TMK_ERR_CONFIG_INVALID, naming the fix): the kept form would hold that error's note instead of the
 * body (until 2026-11-29 it did, and the original was removed for it, for good).
 */
export function rewrittenLegacyRaw(entry: QuarantineEntry, keeper: Keeper): string | undefined {
  if (entry.reason !== REASON || !entry.raw.startsWith(LEGACY_PREFIX)) return undefined;
  const wire = Buffer.from(entry.raw.slice(LEGACY_PREFIX.length), 'base64');
  // The route the body came to is not kept: as a batch, a body without one is kept as one message.
  const route = entry.protocol === 'metriton' ? 'metriton' : 'batch';
  // The kept form catches what a message's keeping throws (it keeps a note instead): seen here first.
  let refused: { error: unknown } | undefined;
  const checked: Keeper = {
    scrub: (text) => keeper.scrub(text),
    installId: (id) => {
      try {
        return keeper.installId(id);
      } catch (error) {
        refused ??= { error };
        throw error;
      }
    },
  };
  let kept: string | undefined;
  try {
    kept = notesOf(
      keptBadGzip(new TelemarkError(REASON, entry.detail), wire, route, checked, MAX_READABLE_BYTES),
    ).keptRaw;
  } catch {
    kept = undefined;
  }
  if (refused) throw refused.error;
  // A note in place of the body (nested too deep to keep) is no rewrite: the original stays.
  if (kept === undefined || kept.startsWith(NOT_REPRESENTABLE_PREFIX)) return undefined;
  return kept;
}

/** The id of the entry that replaces `entry`: derived from it, so a rerun writes the same entry. UUID-shaped. */
function replacementIdOf(entry: StoredQuarantineEntry): string {
  const h = createHash('sha256').update(`telemark.legacy-bad-gzip\u0000${entry.id}`).digest('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20, 32)}`;
}

/** `entry` with its text kept as today, under an id derived from it (`replacementIdOf`). */
export function rewrittenLegacyEntry(
  entry: StoredQuarantineEntry,
  keeper: Keeper,
): (QuarantineEntry & { id: string }) | undefined {
  const raw = rewrittenLegacyRaw(entry, keeper);
  if (raw === undefined) return undefined;
  const { id: _old, ...rest } = entry;
  return { ...rest, raw, id: replacementIdOf(entry) };
}

/**
 * Rewrite the legacy bad-gzip entries `selection` takes (`rewrittenLegacyEntry`), each replacement
 * written with the removal of the entry it replaces (one transaction on DuckDB; on ClickHouse a rerun
 * after a crash between them writes the same replacement, which is not stored twice). Run before an
 * erasure, so that it finds the install in them; `telemark quarantine replay` rewrites them too.
 * Returns how many were rewritten.
 */
export async function rewriteLegacyQuarantine(
  store: Pick<Store, 'listQuarantine' | 'write'>,
  keeper: Keeper,
  selection: Omit<QuarantineSelection, 'reason'> = {},
): Promise<number> {
  let rewritten = 0;
  for await (const page of quarantinePages(store, { ...selection, reason: REASON }, PAGE_ENTRIES)) {
    const quarantine: (QuarantineEntry & { id: string })[] = [];
    const removeQuarantine: string[] = [];
    for (const entry of page) {
      const replacement = rewrittenLegacyEntry(entry, keeper);
      if (!replacement) continue;
      quarantine.push(replacement);
      removeQuarantine.push(entry.id);
    }
    if (quarantine.length === 0) continue;
    await store.write({ events: [], quarantine, counters: [], removeQuarantine });
    rewritten += quarantine.length;
  }
  return rewritten;
}
