/**
 * Ingest workers through a real collector: a worker that dies while it holds a request answers it 503
 * with Retry-After (nothing stored, the client retries), is counted and logged, and is replaced; the
 * retried batch is stored once. The crash comes from an encoder module that exits on one message id.
 */
import fs from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { sql } from '../../packages/server/src/store/sql.js';
import {
  bearer,
  type InProcess,
  metricValue,
  ourMessage,
  postJson,
  resultStatuses,
  startInProcess,
  tempDir,
} from './_helpers.js';

let collector: InProcess | undefined;
afterEach(async () => {
  await collector?.stop();
  collector = undefined;
});

describe('ingest workers', () => {
  it('answer 503 for the requests of a worker that dies, count it, and go on with a new one', async () => {
    const fixture = path.join(tempDir(), 'crashing-encoder.mjs');
    collector = await startInProcess({
      config: { ingestWorkers: 1 },
      wrapStore: (store) => {
        // The real encoder, unless the batch holds the message id "crash".
        fs.writeFileSync(
          fixture,
          `import { encode as real, transferables } from ${JSON.stringify(store.encoder!.module)};
export { transferables };
export function encode(events) {
  if (events.some((e) => e.messageId === 'crash')) process.exit(9);
  return real(events);
}
`,
        );
        return { ...store, encoder: { module: pathToFileURL(fixture).href } };
      },
    });
    const { url } = collector;
    const crashing = await postJson(
      `${url}/v1/batch`,
      { batch: [ourMessage('w-1'), ourMessage('crash')] },
      bearer(),
    );
    expect(crashing.status).toBe(503);
    expect(crashing.json?.code).toBe('TMK_ERR_INGEST_WORKER');
    expect(Number(crashing.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
    expect(await metricValue(url, 'telemark_ingest_worker_stops_total')).toBe(1);
    expect(collector.logs.join('')).toContain('an ingest worker stopped');

    // The client retries without the poison message once the worker is back; w-1 is stored once.
    let retried: Awaited<ReturnType<typeof postJson>> | undefined;
    for (let i = 0; i < 50 && retried?.status !== 200; i++) {
      await new Promise((r) => setTimeout(r, 50));
      retried = await postJson(
        `${url}/v1/batch`,
        { batch: [ourMessage('w-1'), ourMessage('w-2')] },
        bearer(),
      );
    }
    expect(retried?.status).toBe(200);
    expect(resultStatuses(retried?.json)).toEqual(['accepted', 'accepted']);
    const rows = await collector.store.query<{ id: string }>(
      sql`SELECT message_id AS id FROM events WHERE message_id IN ('w-1', 'w-2', 'crash') ORDER BY 1`,
    );
    expect(rows.map((r) => r.id)).toEqual(['w-1', 'w-2']);
  });
});
