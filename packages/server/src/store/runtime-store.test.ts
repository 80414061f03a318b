import { describe, expect, it } from 'vitest';
import { TelemarkError } from '../errors.js';
import { createRuntimeStore } from './runtime-store.js';
import type { StoreDriver } from './types.js';

/** A driver that counts calls: the subject here is the lifecycle wrapper, not an engine. */
function countingDriver(failInits = 0) {
  const calls = { init: 0, close: 0, write: 0 };
  const driver: StoreDriver = {
    name: 'counting',
    dialect: 'duckdb',
    dedupeWindowDays: 8,
    async init() {
      calls.init++;
      await new Promise((r) => setTimeout(r, 5));
      if (calls.init <= failInits) throw new Error(`init failure ${calls.init}`);
    },
    async write(batch) {
      calls.write++;
      return { statuses: batch.events.map(() => 'accepted' as const) };
    },
    query: async () => [],
    listQuarantine: async () => [],
    removeQuarantine: async () => 0,
    deleteInstall: async () => ({ events: 0, quarantine: 0 }),
    applyRetention: async () => 0,
    trimUnattributedQuarantine: async () => 0,
    exportEvents: async () => 0,
    health: async () => ({ ok: true, detail: 'ok' }),
    async close() {
      calls.close++;
    },
  };
  return { driver, calls };
}

const emptyBatch = { events: [], quarantine: [], counters: [] };

describe('createRuntimeStore', () => {
  it('initialises once for concurrent callers', async () => {
    const { driver, calls } = countingDriver();
    const store = createRuntimeStore(driver);
    await Promise.all([store.init(), store.write(emptyBatch), store.query({} as never), store.init()]);
    expect(calls.init).toBe(1);
    expect(calls.write).toBe(1);
  });

  it('retries a failed init on the next call', async () => {
    const { driver, calls } = countingDriver(1);
    const store = createRuntimeStore(driver);
    await expect(store.write(emptyBatch)).rejects.toMatchObject({ code: 'TMK_ERR_STORE_INIT' });
    expect((await store.health()).ok).toBe(true);
    await store.write(emptyBatch);
    expect(calls.init).toBe(2);
  });

  it('closes once, and refuses calls after close', async () => {
    const { driver, calls } = countingDriver();
    const store = createRuntimeStore(driver);
    await store.init();
    await Promise.all([store.close(), store.close()]);
    await store.close();
    expect(calls.close).toBe(1);
    const error = await store.write(emptyBatch).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(TelemarkError);
    expect((error as TelemarkError).code).toBe('TMK_ERR_STORE_CLOSED');
    await expect(store.init()).rejects.toMatchObject({ code: 'TMK_ERR_STORE_CLOSED' });
    expect((await store.health()).ok).toBe(false);
  });

  it('does not open a store that was never used just to close it', async () => {
    const { driver, calls } = countingDriver();
    await createRuntimeStore(driver).close();
    expect(calls).toEqual({ init: 0, close: 0, write: 0 });
  });
});
