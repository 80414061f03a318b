/**
 * JSON a client may send that JavaScript itself trips on, through a real collector (HTTP, ingest workers,
 * DuckDB): objects whose own `toString` and `valueOf` are not functions, where the collector turns a value
 * into text, and names of `Object.prototype`'s members where it looks a value up in a table. Each gets a
 * per-message answer or a 4xx, never a 5xx, and never fails the other requests committed with it.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectReport, goIndent, tpReport } from '../../packages/server/src/ingest/_metriton-fixtures.js';
import { sql } from '../../packages/server/src/store/sql.js';
import { bearer, type InProcess, ourMessage, postJson, resultStatuses, startInProcess } from './_helpers.js';

/** `{"toString":1}`, as a client's JSON arrives: `String()` of it throws. */
const unprintable = JSON.parse('{"toString":1,"valueOf":{}}');

describe('hostile values in otherwise valid requests', () => {
  let c: InProcess;
  beforeAll(async () => {
    c = await startInProcess();
  });
  afterAll(async () => c.stop());

  it('a Segment message whose type cannot be printed is rejected alone, the batch answered 200', async () => {
    const answer = await postJson(
      `${c.url}/v1/batch`,
      { batch: [{ ...ourMessage('hv-type'), type: unprintable }, ourMessage('hv-ok')] },
      bearer(),
    );
    expect(answer.status).toBe(200);
    expect(resultStatuses(answer.json)).toEqual(['rejected', 'accepted']);
    const results = (answer.json?.results ?? []) as { reason?: string; detail?: string }[];
    expect(results[0]).toMatchObject({ reason: 'TMK_ERR_UNSUPPORTED_CALL' });
    expect(results[0]?.detail).toContain('toString');
  });

  it('a Metriton report whose index cannot be printed is stored, and its resend is a duplicate', async () => {
    const report = goIndent(tpReport({ action: 'connect', index: unprintable, time_to_connect: 1.5 }));
    const first = await fetch(`${c.url}/scout`, { method: 'POST', body: report });
    const again = await fetch(`${c.url}/scout`, { method: 'POST', body: report });
    expect([first.status, again.status]).toEqual([200, 200]);
    const rows = await c.store.query<{ seq: number }>(
      sql`SELECT seq FROM events WHERE protocol = 'metriton' AND json_extract_string(traits, '$.time_to_connect') = '1.5'`,
    );
    expect(rows).toEqual([{ seq: 0 }]);
  });

  it('a Metriton report naming goarch "constructor" is stored as sent, and the reports beside it too', async () => {
    const odd = goIndent(
      tpReport({ action: 'connect', index: 41, goarch: 'constructor', goos: '__proto__' }),
    );
    const beside = Array.from({ length: 20 }, (_, i) =>
      goIndent({ ...connectReport, metadata: { ...connectReport.metadata, index: 100 + i } }),
    );
    // Sent together, so that they share group commits with the odd one.
    const statuses = await Promise.all(
      [odd, ...beside].map(async (body) => (await fetch(`${c.url}/scout`, { method: 'POST', body })).status),
    );
    expect(statuses).toEqual(Array(21).fill(200));
    const [row] = await c.store.query<{ arch: string; platform: string }>(
      sql`SELECT arch, platform FROM events WHERE protocol = 'metriton' AND seq = 41`,
    );
    expect(row).toEqual({ arch: 'constructor', platform: '__proto__' });
    const [{ n } = { n: 0 }] = await c.store.query<{ n: number }>(
      sql`SELECT count(*)::INTEGER AS n FROM events WHERE protocol = 'metriton' AND seq >= 100 AND seq < 120`,
    );
    expect(n).toBe(20);
    expect((await fetch(`${c.url}/readyz`)).status).toBe(200);
  });

  describe('an id or a name nested deeper than a copy can recurse', () => {
    /** JSON text of `1` inside `depth` arrays. */
    const nested = (depth: number) => `${'['.repeat(depth)}1${']'.repeat(depth)}`;
    /** `message`'s JSON with the value of `field` replaced by `json` (as text: no JS value nests so deep). */
    const withField = (message: object, field: string, json: string) =>
      JSON.stringify({ ...message, [field]: '@@' }).replace('"@@"', json);
    const kept = async (reason: string) =>
      (await c.store.listQuarantine({ reason })).filter((e) => e.raw.includes('not representable'));

    it("a Metriton install_id or action: 400 (or an unknown app's empty 200), kept with a placeholder", async () => {
      const report = tpReport({ action: 'connect', index: 3, time_to_connect: 1.5 });
      const bodies = [
        withField(report, 'install_id', nested(3_000)),
        withField(report, 'metadata', `{"action":${nested(3_000)},"index":4}`),
        withField({ ...report, application: 'no-such-tool' }, 'metadata', `{"action":${nested(3_000)}}`),
      ];
      const statuses = [];
      for (const body of bodies)
        statuses.push((await fetch(`${c.url}/scout`, { method: 'POST', body })).status);
      expect(statuses).toEqual([400, 400, 200]);
      expect((await kept('TMK_ERR_INVALID_MESSAGE')).length).toBeGreaterThanOrEqual(2);
    });

    it('a Segment messageId or event, on /v1/track and in a batch (the ingest workers): no 5xx', async () => {
      const one = (id: string) => ({ ...ourMessage(id), writeKey: undefined });
      const track = [
        withField(one('deep-id'), 'messageId', nested(3_000)),
        withField(one('deep-event'), 'event', nested(3_000)),
      ];
      for (const body of track) {
        const answer = await postJson(`${c.url}/v1/track`, body, bearer());
        expect(answer.status).toBeLessThan(500);
      }
      // 200,000 deep: 400 KB, under the batch limit, past a worker's larger stack.
      const batch = `{"batch":[${withField(ourMessage('deep-batch'), 'event', nested(200_000))},${JSON.stringify(ourMessage('beside-deep'))}]}`;
      const answer = await postJson(`${c.url}/v1/batch`, batch, bearer());
      expect(answer.status).toBe(200);
      expect(resultStatuses(answer.json)).toEqual(['rejected', 'accepted']);
    });
  });
});
