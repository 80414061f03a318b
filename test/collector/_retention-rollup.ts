/**
 * The scenario both engines' retention tests run (DuckDB: retention.test.ts; ClickHouse:
 * test/clickhouse/retention.test.ts): retention must take the analytics rollup's per-install rows of
 * the days it removes with it, not leave them for a later refresh or cleanup.
 */
import { createAnalytics } from '../../packages/server/src/analytics/index.js';
import { ROLLUP_TABLES } from '../../packages/server/src/analytics/rollup.js';
import type { RetentionReport } from '../../packages/server/src/store/index.js';
import { raw, sql } from '../../packages/server/src/store/sql.js';
import { bearer, MYTOOL_CATALOG, MYTOOL_KEY, ourMessage, postJson, startInProcess } from './_helpers.js';

const DAY = 86_400_000;

/**
 * A collector (`config` beside an app with `retentionDays` 3) given one install's event received ten
 * days ago and another's received five minutes ago (before ClickHouse's rollup horizon of two), the
 * rollup refreshed as a dashboard request would, then retention run: the installs in the rollup's rows
 * — every row, of any generation — before and after it, and retention's report.
 */
export async function installsRolledUpAroundRetention(
  config: Record<string, unknown> = {},
  dataDir?: string,
): Promise<{ before: number; after: number; retention: RetentionReport }> {
  let clock = Date.now() - 10 * DAY;
  const c = await startInProcess({
    ...(dataDir ? { dataDir } : {}),
    now: () => clock,
    config: {
      ...config,
      retention: { intervalMinutes: 0 },
      apps: { mytool: { catalog: MYTOOL_CATALOG, writeKeys: [MYTOOL_KEY], retentionDays: 3 } },
    },
  });
  try {
    const send = async (id: string, install: string) => {
      const message = ourMessage(id, { anonymousId: install, timestamp: new Date(clock).toISOString() });
      const answer = await postJson(`${c.url}/v1/batch`, { batch: [message] }, bearer());
      if (answer.status !== 200) throw new Error(`${id}: answered ${answer.status}`);
    };
    await send('o-1', 'old-install');
    clock = Date.now() - 5 * 60_000;
    await send('n-1', 'new-install');
    await createAnalytics({ store: c.store, registry: c.config.registry }).refresh('mytool');
    const installs = async () =>
      Number(
        (
          await c.store.query<{ n: number }>(
            sql`SELECT count(DISTINCT install_key) AS n FROM ${raw(ROLLUP_TABLES.installs)} WHERE app = ${'mytool'}`,
          )
        )[0]?.n,
      );
    const before = await installs();
    clock = Date.now();
    const retention = await c.collector.runRetention();
    return { before, after: await installs(), retention };
  } finally {
    await c.stop();
  }
}

/** What the scenario must give on every engine: both installs rolled up, then the old one gone. */
export const ROLLED_UP_AROUND_RETENTION = {
  before: 2,
  after: 1,
  retention: { removed: { mytool: 1 }, unattributedQuarantine: 0, failed: {} },
};
