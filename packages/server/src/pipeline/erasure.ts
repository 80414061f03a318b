import type { InstallErasure, Store } from '../store/types.js';

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

/**
 * Erase one install of one app under every id it may be stored as: its pseudonym (`storedIdOf`, the
 * event builder's `installId` with this deployment's key) and the id as given, which a collector from
 * before pseudonyms stored as it was. Without `storedIdOf` (no key was ever made, so no pseudonym
 * exists) only the id as given.
 */
export async function eraseInstall(
  store: Pick<Store, 'deleteInstall'>,
  app: string,
  installId: string,
  storedIdOf?: (id: string) => string,
): Promise<InstallErasureReport> {
  const storedAs = storedIdOf?.(installId);
  let { events, quarantine } = await store.deleteInstall(app, installId);
  if (storedAs !== undefined && storedAs !== installId) {
    const erased = await store.deleteInstall(app, storedAs);
    events += erased.events;
    quarantine += erased.quarantine;
    return { app, installId, storedAs, events, quarantine };
  }
  return { app, installId, events, quarantine };
}
