/**
 * Segment bodies at the edges of the documented limits and formats, against a real collector on a real
 * DuckDB file: a message of exactly 32 KB however the body is framed, and timestamps that are ISO 8601
 * / RFC 3339 but not `toISOString()`'s shape.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sql } from '../../packages/server/src/store/sql.js';
import { type InProcess, MYTOOL_KEY, postJson, resultStatuses, startInProcess } from './_helpers.js';

const auth = { authorization: `Basic ${Buffer.from(`${MYTOOL_KEY}:`).toString('base64')}` };
const LIMIT = 32 * 1024;

/** A Segment `track` message for mytool; `pad` is a top-level key the collector ignores. */
const track = (messageId: string, overrides: Record<string, unknown> = {}) => ({
  type: 'track',
  messageId,
  anonymousId: 'edge-install',
  event: 'run',
  properties: { command: 'build' },
  timestamp: new Date().toISOString(),
  ...overrides,
});

/** A message whose compact JSON is exactly `bytes` bytes of UTF-8, padded with `ch`. */
function sized(messageId: string, bytes: number, ch = 'x'): Record<string, unknown> {
  const bare = Buffer.byteLength(JSON.stringify(track(messageId, { pad: '' })));
  const need = bytes - bare;
  const wide = Math.floor(need / Buffer.byteLength(ch));
  const message = track(messageId, {
    pad: ch.repeat(wide) + 'x'.repeat(need - wide * Buffer.byteLength(ch)),
  });
  expect(Buffer.byteLength(JSON.stringify(message))).toBe(bytes);
  return message;
}

/** Small messages, so the batch is large enough to be measured message by message. */
const filler = (tag: string) => Array.from({ length: 3 }, (_, i) => track(`${tag}-filler-${i}`));

describe('Segment messages at the 32 KB limit, however the body is framed', () => {
  let c: InProcess;
  beforeAll(async () => {
    c = await startInProcess();
  });
  afterAll(async () => {
    await c?.stop();
  });

  it('takes a message of exactly 32 KB in a body with a byte-order mark, and measures it as sent', async () => {
    const exact = sized('bom-exact', LIMIT, 'é');
    // 32 KB + 1 as sent, but less once its whitespace is gone: measured as sent, it is over.
    const spaced = `{${' '.repeat(11)}${JSON.stringify(sized('bom-spaced', LIMIT - 10)).slice(1)}`;
    expect(Buffer.byteLength(spaced)).toBe(LIMIT + 1);
    const body = `\ufeff{"batch":[${JSON.stringify(exact)},${spaced},${filler('bom')
      .map((m) => JSON.stringify(m))
      .join(',')}]}`;
    const r = await postJson(`${c.url}/v1/batch`, body, auth);
    expect(r.status).toBe(200);
    expect(resultStatuses(r.json)).toEqual(['accepted', 'rejected', 'accepted', 'accepted', 'accepted']);
    const results = (r.json?.results ?? []) as { reason?: string }[];
    expect(results[1]?.reason).toBe('TMK_ERR_EVENT_TOO_LARGE');
  });

  it('takes a message of exactly 32 KB in a batch whose messages it cannot find as sent', async () => {
    // "batch" spelled with an escape: the messages are measured as serialised again.
    const batch = [sized('esc-exact', LIMIT), sized('esc-over', LIMIT + 1), ...filler('esc')];
    const body = JSON.stringify({ batch }).replace('"batch"', '"\\u0062atch"');
    const r = await postJson(`${c.url}/v1/batch`, body, auth);
    expect(r.status).toBe(200);
    expect(resultStatuses(r.json)).toEqual(['accepted', 'rejected', 'accepted', 'accepted', 'accepted']);
  });

  it('does not count a byte-order mark into a single call of exactly 32 KB', async () => {
    const ok = await postJson(
      `${c.url}/v1/track`,
      `\ufeff${JSON.stringify(sized('track-bom', LIMIT))}`,
      auth,
    );
    expect([ok.status, resultStatuses(ok.json)]).toEqual([200, ['accepted']]);
    const over = await postJson(
      `${c.url}/v1/track`,
      `\ufeff${JSON.stringify(sized('track-bom-over', LIMIT + 1))}`,
      auth,
    );
    expect([over.status, over.json?.code]).toEqual([400, 'TMK_ERR_EVENT_TOO_LARGE']);
  });
});

describe('Segment timestamps in every ISO 8601 / RFC 3339 form a sender may write', () => {
  let c: InProcess;
  beforeAll(async () => {
    c = await startInProcess();
  });
  afterAll(async () => {
    await c?.stop();
  });

  const stored = async (messageId: string) =>
    (
      await c.store.query<{ ts: number; received: number; clamped: boolean }>(
        sql`SELECT epoch_ms(ts) AS ts, epoch_ms(received_at) AS received, clamped FROM events WHERE message_id = ${messageId}`,
      )
    )[0];

  it('reads a null timestamp or originalTimestamp as none: the message is dated when it was received', async () => {
    const r = await postJson(
      `${c.url}/v1/batch`,
      {
        batch: [
          track('null-ts', { timestamp: null }),
          track('null-original', { timestamp: undefined, originalTimestamp: null }),
          track('null-both', { timestamp: null, originalTimestamp: '2026-01-02T03:04:05.000Z' }),
        ],
      },
      auth,
    );
    expect([r.status, resultStatuses(r.json)]).toEqual([200, ['accepted', 'accepted', 'accepted']]);
    for (const id of ['null-ts', 'null-original']) {
      const row = await stored(id);
      expect(Number(row?.ts)).toBe(Number(row?.received));
    }
    // A null timestamp leaves the client's time to originalTimestamp, as an absent one does.
    expect(Number((await stored('null-both'))?.ts)).toBe(Date.UTC(2026, 0, 2, 3, 4, 5));
  });

  it('takes a leap second, nanoseconds and more, and a year past 9999 (clamped, as any time too far ahead)', async () => {
    const r = await postJson(
      `${c.url}/v1/batch`,
      {
        batch: [
          track('leap', { timestamp: '2016-12-31T23:59:60Z' }),
          track('leap-ms', { timestamp: '2016-12-31T23:59:60.500Z' }),
          track('ten-digits', { timestamp: '2026-01-02T03:04:05.1234567890Z' }),
          // What `new Date(Date.UTC(10000, 0, 1)).toISOString()` writes.
          track('year-10000', { timestamp: '+010000-01-01T00:00:00.000Z' }),
          // Rolled over to March 2nd by Date.parse: refused, as the same day in toISOString's shape is.
          track('feb-30', { timestamp: '2026-02-30T00:00:00Z' }),
        ],
      },
      auth,
    );
    expect(r.status).toBe(200);
    expect(resultStatuses(r.json)).toEqual(['accepted', 'accepted', 'accepted', 'accepted', 'rejected']);
    expect(Number((await stored('leap'))?.ts)).toBe(Date.UTC(2017, 0, 1));
    expect(Number((await stored('leap-ms'))?.ts)).toBe(Date.UTC(2017, 0, 1) + 500);
    expect(Number((await stored('ten-digits'))?.ts)).toBe(Date.UTC(2026, 0, 2, 3, 4, 5, 123));
    const future = await stored('year-10000');
    expect(future?.clamped).toBe(true);
    expect(Number(future?.ts)).toBe(Number(future?.received));
  });
});
