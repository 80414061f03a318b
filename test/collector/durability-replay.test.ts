import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { sql } from '../../packages/server/src/store/sql.js';
import {
  appsWith,
  baseConfig,
  bearer,
  CATALOG_V1,
  MYTOOL_CATALOG,
  openData,
  ourMessage,
  postJson,
  resultStatuses,
  runCliSync,
  startInProcess,
  tempDir,
} from './_helpers.js';

const DAY_MS = 86_400_000;

const telemark = (...args: string[]) => runCliSync(args);

/** Version 1 of the catalog lacks the `install` event; version 2 adds it. */

describe('quarantine replay of entries older than the dedupe window', () => {
  it('run again after an interruption, finds the events it stored: nothing is stored twice', async () => {
    const dataDir = tempDir();
    const longAgo = Date.now() - 20 * DAY_MS;
    // Received 20 days ago, refused by a catalog that lacked the event.
    const collector = await startInProcess({
      dataDir,
      config: appsWith(CATALOG_V1),
      now: () => longAgo,
    });
    const message = ourMessage('late-install', {
      event: 'install',
      properties: {},
      timestamp: new Date(longAgo).toISOString(),
    });
    const response = await postJson(`${collector.url}/v1/batch`, { batch: [message] }, bearer());
    expect(resultStatuses(response.json)).toEqual(['rejected']);
    expect((await collector.stop()).clean).toBe(true);

    const store = await openData(dataDir);
    const [entry] = await store.listQuarantine({ app: 'mytool' });
    await store.close();
    expect(entry?.receivedAt).toBe(longAgo);

    const configFile = join(tempDir(), 'config.json');
    writeFileSync(configFile, JSON.stringify(baseConfig(dataDir, appsWith(MYTOOL_CATALOG))));
    const replay = () => telemark('quarantine', 'replay', '--data', dataDir, '--config', configFile);
    expect(replay().code).toBe(0);

    // What a replay interrupted after its write and before removing the entry leaves: the event stored,
    // the entry still there.
    const interrupted = await openData(dataDir);
    const { id: _id, ...kept } = entry!;
    await interrupted.write({ events: [], quarantine: [kept], counters: [] });
    await interrupted.close();
    const again = replay();
    expect(again.code).toBe(0);
    expect(again.stdout).toContain('(0 event(s) stored, 1 already stored)');

    const after = await openData(dataDir);
    try {
      const rows = await after.query<{ n: number }>(
        sql`SELECT count(*) AS n FROM events WHERE app = 'mytool' AND message_id = 'late-install'`,
      );
      expect(rows[0]?.n).toBe(1);
      expect(await after.listQuarantine({ app: 'mytool' })).toEqual([]);
    } finally {
      await after.close();
    }
  });
});
