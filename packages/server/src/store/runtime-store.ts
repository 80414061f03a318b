import { errorMessage, TelemarkError } from '../errors.js';
import type { Store, StoreDriver } from './types.js';

/**
 * Lifecycle invariants for every engine, enforced once here: `init` runs once and concurrent callers
 * share it; a failed `init` can be retried; every call waits for `init`; calls after `close` fail with
 * `TMK_ERR_STORE_CLOSED`; `close` is idempotent and waits for `init` to settle first.
 */
export function createRuntimeStore(driver: StoreDriver): Store {
  let initPromise: Promise<void> | undefined;
  let closePromise: Promise<void> | undefined;

  const init = (): Promise<void> => {
    if (closePromise) return Promise.reject(new TelemarkError('TMK_ERR_STORE_CLOSED', driver.name));
    initPromise ??= driver.init().catch((error: unknown) => {
      initPromise = undefined;
      throw new TelemarkError('TMK_ERR_STORE_INIT', driver.name, { cause: error });
    });
    return initPromise;
  };

  const guarded =
    <A extends unknown[], R>(fn: (...args: A) => Promise<R>) =>
    async (...args: A): Promise<R> => {
      if (closePromise) throw new TelemarkError('TMK_ERR_STORE_CLOSED', driver.name);
      await init();
      return fn(...args);
    };

  const guardedDelete = guarded((app: string, id: string) => driver.deleteInstall(app, id));

  return {
    name: driver.name,
    dialect: driver.dialect,
    dedupeWindowDays: driver.dedupeWindowDays,
    ...(driver.concurrentWrites ? { concurrentWrites: driver.concurrentWrites } : {}),
    ...(driver.encoder ? { encoder: driver.encoder } : {}),
    init,
    write: guarded((batch) => driver.write(batch)),
    query: guarded((q) => driver.query(q)) as Store['query'],
    listQuarantine: guarded((f) => driver.listQuarantine(f)),
    removeQuarantine: guarded((ids) => driver.removeQuarantine(ids)),
    deleteInstall: async (app, installId) => {
      // Checked once for every engine: an empty id would match (and erase) more than one install.
      if (typeof app !== 'string' || app === '' || typeof installId !== 'string' || installId === '')
        throw new TelemarkError(
          'TMK_ERR_BAD_PARAMETER',
          'deleteInstall needs a non-empty app and install id',
        );
      return guardedDelete(app, installId);
    },
    applyRetention: guarded((app, before) => driver.applyRetention(app, before)),
    trimUnattributedQuarantine: guarded((before) => driver.trimUnattributedQuarantine(before)),
    exportEvents: guarded((o) => driver.exportEvents(o)),
    ...(driver.maintain ? { maintain: guarded((statements) => driver.maintain!(statements)) } : {}),
    ...(driver.changes ? { changes: () => driver.changes!() } : {}),
    ...(driver.changeToken ? { changeToken: guarded(() => driver.changeToken!()) } : {}),
    ...(driver.backlog ? { backlog: () => driver.backlog!() } : {}),
    health: async () => {
      if (closePromise) return { ok: false, detail: 'closed' };
      try {
        await init();
      } catch (error) {
        return { ok: false, detail: errorMessage(error) };
      }
      return driver.health();
    },
    close: () => {
      closePromise ??= (async () => {
        if (initPromise) await initPromise.catch(() => undefined);
        else return;
        await driver.close();
      })();
      return closePromise;
    },
  };
}
