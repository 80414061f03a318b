import { errorFirstLine, isTelemarkError, TelemarkError } from '../errors.js';
import type { Keeper } from '../ingest/prepared.js';
import type { InstallErasure, Store } from '../store/types.js';
import { rewriteLegacyQuarantine } from './legacy-quarantine.js';

/** What an erasure of one install removed, and under which ids. */
export interface InstallErasureReport extends InstallErasure {
  readonly app: string;
  readonly installId: string;
  /**
   * The id the collector stores for `installId` when that differs: an id the scrubber would change (an
   * e-mail address…) is stored as its pseudonym (docs/privacy.md, "Install ids"); its events went too.
   */
  readonly storedAs?: string;
}

const UNFINISHED = 'TMK_ERR_STORE_UNFINISHED';

/**
 * Erase one install of one app under every id it may be stored as: its pseudonym (`keeper.installId`,
 * the event builder's, with this deployment's key) and the id as given, which a collector from before
 * pseudonyms stored as it was. A keeper without the key refuses an id that needs one
 * (TMK_ERR_CONFIG_INVALID) before anything is written: erasing only the id as given would answer
 * "0 erased" for an install whose events are all under its pseudonym.
 *
 * Legacy bad-gzip quarantine entries of the app and of no app (collectors before 2026-11-29 kept them in
 * base64, where the erasure's search cannot see an id) are first kept as today with `keeper`
 * (`rewriteLegacyQuarantine`). Here and not in each caller: until 2026-11-29 every caller ran it itself,
 * and the API skipped it when it was given no builder, so the install stayed in those entries.
 *
 * The first pass can fail after its commit (`TMK_ERR_STORE_UNFINISHED`: rows gone, the data
 * file not checkpointed). The pseudonym's pass still runs then, and the first error is thrown after it
 * (until 2026-11-29 the pseudonym's events were left, and the error said nothing had been written):
 * - run, because the pseudonym holds what a current collector stores of the install; stopping there
 *   would leave all of it in every answer when only the file's cleanup of the first pass was left;
 * - thrown, not answered as done, because this erasure is not known to be finished: the first pass's
 *   counts are lost with its error, and its rows may still be in the data file (the store may be out
 *   now, e.g. DuckDB invalidated by a checkpoint on a full disk, and the second pass failed as well).
 *   The error says to run the command again: a rerun removes nothing twice, erases what is left under
 *   both ids, and its own checkpoint clears the file.
 */
export async function eraseInstall(
  store: Pick<Store, 'deleteInstall' | 'listQuarantine' | 'write'>,
  app: string,
  installId: string,
  keeper: Keeper,
): Promise<InstallErasureReport> {
  const storedAs = keeper.installId(installId);
  const pseudonymous = storedAs !== installId;
  // The erasure's search takes the entries of no app too (a request refused before it named its app).
  for (const owner of [app, '']) await rewriteLegacyQuarantine(store, keeper, { app: owner });
  let first: InstallErasure;
  try {
    first = await store.deleteInstall(app, installId);
  } catch (error) {
    if (!pseudonymous || !isTelemarkError(error) || error.code !== UNFINISHED) throw error;
    // (Counts and codes only: the ids stay out of the message, as out of the collector's log.)
    const then = await store.deleteInstall(app, storedAs).then(
      (erased) =>
        `the install's pseudonym was erased too: ${erased.events} events, ${erased.quarantine} quarantine entries`,
      (failure: unknown) =>
        `erasing the install's pseudonym failed as well: ${
          isTelemarkError(failure) ? `[${failure.code}] ${failure.detail}` : errorFirstLine(failure)
        }`,
    );
    throw new TelemarkError(UNFINISHED, `${error.detail}; ${then}`, { cause: error });
  }
  let { events, quarantine } = first;
  if (pseudonymous) {
    const erased = await store.deleteInstall(app, storedAs);
    events += erased.events;
    quarantine += erased.quarantine;
    return { app, installId, storedAs, events, quarantine };
  }
  return { app, installId, events, quarantine };
}
