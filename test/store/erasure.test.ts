/**
 * Erasure is immediate everywhere the install's data lives: `deleteInstall` removes its events and, in the
 * same transaction, its rows in the derived per-install tables (the analytics rollup), without waiting for
 * the next refresh. Uses the hand-written analytics dataset (install i3 has 7 events on three days).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { createAnalytics } from '../../packages/server/src/analytics/index.js';
import { ROLLUP_TABLES } from '../../packages/server/src/analytics/rollup.js';
import { createDuckDBStore } from '../../packages/server/src/store/duckdb/index.js';
import { join, raw, sql } from '../../packages/server/src/store/sql.js';
import type { Store } from '../../packages/server/src/store/types.js';
import { APP, createTestRegistry, writeDataset } from '../analytics/dataset.js';

const NOW = Date.UTC(2026, 10, 16);
const dirs: string[] = [];
const stores: Store[] = [];

afterEach(async () => {
  for (const store of stores.splice(0)) await store.close().catch(() => undefined);
  for (const dir of dirs.splice(0)) fs.rmSync(dir, { recursive: true, force: true });
});

function open(): Store {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'telemark-'));
  dirs.push(dir);
  const store = createDuckDBStore({ path: path.join(dir, 'telemark.duckdb'), now: () => NOW });
  stores.push(store);
  return store;
}

const count = async (store: Store, query: ReturnType<typeof sql>) =>
  Number((await store.query<{ n: unknown }>(query))[0]?.n);

describe('erasure', () => {
  it('deleteInstall removes the install from the rollup at once, and leaves the other installs', async () => {
    const store = open();
    await writeDataset(store);
    const analytics = createAnalytics({ store, registry: createTestRegistry(), now: () => NOW });
    await analytics.refresh(APP);
    const perInstall = (table: string, install: string) =>
      count(
        store,
        sql`SELECT count(*) AS n FROM ${raw(table)} WHERE app = ${APP} AND install_key = hash(${install})`,
      );
    const startsOf = (install: string) =>
      count(
        store,
        sql`SELECT count(*) AS n FROM ${raw(ROLLUP_TABLES.starts)} WHERE app = ${APP} AND session_key IN
              (SELECT hash(install_id, session_id) FROM events WHERE app = ${APP} AND install_id = ${install})`,
      );
    const sessionKeys = await store.query<{ k: unknown }>(
      sql`SELECT DISTINCT hash(install_id, session_id)::VARCHAR AS k FROM events WHERE app = ${APP} AND install_id = 'i3'`,
    );
    // The rollup holds i3 before, in every per-install table.
    for (const table of [ROLLUP_TABLES.events, ROLLUP_TABLES.installs])
      expect(await perInstall(table, 'i3'), table).toBeGreaterThan(0);
    expect(await startsOf('i3')).toBeGreaterThan(0);
    const othersBefore = await count(
      store,
      sql`SELECT count(*) AS n FROM ${raw(ROLLUP_TABLES.events)} WHERE app = ${APP} AND install_key <> hash('i3')`,
    );

    expect((await store.deleteInstall(APP, 'i3')).events).toBe(7);

    // No refresh in between: nothing of i3 is left in any rollup table.
    for (const table of [ROLLUP_TABLES.events, ROLLUP_TABLES.installs])
      expect(await perInstall(table, 'i3'), table).toBe(0);
    const startsLeft = await count(
      store,
      sql`SELECT count(*) AS n FROM ${raw(ROLLUP_TABLES.starts)}
          WHERE app = ${APP} AND session_key::VARCHAR IN (${join(sessionKeys.map((r) => sql`${String(r.k)}`))})`,
    );
    expect(startsLeft).toBe(0);
    expect(
      await count(
        store,
        sql`SELECT count(*) AS n FROM ${raw(ROLLUP_TABLES.events)} WHERE app = ${APP} AND install_key <> hash('i3')`,
      ),
    ).toBe(othersBefore);
    // The views read raw events until the next refresh repairs the day counts.
    const overview = await analytics.run('overview', { app: APP, from: '2026-11-02', to: '2026-11-16' });
    expect(overview).toMatchObject({ events: 31, installs: 4, rollupWatermark: null });
    expect((await analytics.refresh(APP))[0]).toMatchObject({ mode: 'repair', days: 3 });
  });
});
