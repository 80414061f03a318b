/**
 * Segment payloads as the SDKs people use send them (analytics-ruby, -java, -go, -python, RudderStack),
 * against a real collector on a real DuckDB file.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sql } from '../../packages/server/src/store/sql.js';
import {
  type InProcess,
  MYTOOL_CATALOG,
  MYTOOL_KEY,
  postJson,
  resultStatuses,
  startInProcess,
} from './_helpers.js';

const basic = (user: string) => ({ authorization: `Basic ${Buffer.from(user).toString('base64')}` });

/** A Segment `track` message as the server SDKs build it: no `context.cli`. */
const track = (messageId: string, overrides: Record<string, unknown> = {}) => ({
  type: 'track',
  messageId,
  anonymousId: 'wire-install',
  event: 'run',
  properties: { command: 'build' },
  timestamp: new Date().toISOString(),
  ...overrides,
});

describe('Segment SDK payloads on the wire', () => {
  let c: InProcess;
  beforeAll(async () => {
    c = await startInProcess({
      config: { apps: { kl: { catalog: { ...MYTOOL_CATALOG, app: 'kl' }, allowKeyless: true } } },
    });
  });
  afterAll(async () => {
    await c?.stop();
  });

  const row = async (messageId: string) =>
    (
      await c.store.query<Record<string, unknown>>(
        sql`SELECT app, library, epoch_ms(ts) AS ts, skew_ms FROM events WHERE message_id = ${messageId}`,
      )
    )[0];

  it('takes /v1/import, the batch path analytics-ruby and analytics-java post to', async () => {
    const body = {
      sentAt: '2026-01-02T03:04:05.123456+00:00',
      batch: [
        track('import-1', {
          // Ruby's time format: microseconds and a numeric offset.
          timestamp: '2026-01-02T03:04:00.123456+00:00',
          context: { library: { name: 'analytics-ruby', version: '2.4.0' } },
          integrations: {},
        }),
      ],
    };
    const r = await postJson(`${c.url}/v1/import`, body, basic(`${MYTOOL_KEY}:`));
    expect([r.status, resultStatuses(r.json)]).toEqual([200, ['accepted']]);
    expect(await row('import-1')).toMatchObject({ app: 'mytool', library: 'analytics-ruby/2.4.0' });
    // analytics-java's default path, with its trailing slash, its batch context and sequence number.
    const java = {
      sentAt: new Date().toISOString(),
      sequence: 0,
      context: { library: { name: 'analytics-java', version: '3.5.1' } },
      batch: [track('import-2')],
    };
    const r2 = await postJson(`${c.url}/v1/import/`, java, basic(`${MYTOOL_KEY}:`));
    expect([r2.status, resultStatuses(r2.json)]).toEqual([200, ['accepted']]);
    expect(await row('import-2')).toMatchObject({ library: 'analytics-java/3.5.1' });
  });

  it("applies a batch's top-level context to its messages, as Segment's spec says (analytics-go)", async () => {
    const body = {
      messageId: 'go-batch-1',
      sentAt: new Date().toISOString(),
      context: { library: { name: 'analytics-go', version: '3.3.0' } },
      // Go's time.Time: nanoseconds.
      batch: [track('go-1', { timestamp: '2026-01-02T03:04:05.123456789Z' })],
    };
    const r = await postJson(`${c.url}/v1/batch`, body, basic(`${MYTOOL_KEY}:`));
    expect([r.status, resultStatuses(r.json)]).toEqual([200, ['accepted']]);
    expect(await row('go-1')).toMatchObject({ library: 'analytics-go/3.3.0' });
  });

  it("lets a keyless message take its app from the batch's context, its own context winning", async () => {
    const body = {
      context: { app: { name: 'kl' }, library: { name: 'batch-lib', version: '1' } },
      batch: [
        track('kl-1'),
        track('kl-2', { context: { library: { name: 'own-lib', version: '2' } } }),
        track('kl-3', { context: { app: { name: 'mytool' } } }),
      ],
    };
    const r = await postJson(`${c.url}/v1/batch`, body);
    expect([r.status, resultStatuses(r.json)]).toEqual([200, ['accepted', 'accepted', 'rejected']]);
    expect(await row('kl-1')).toMatchObject({ app: 'kl', library: 'batch-lib/1' });
    expect(await row('kl-2')).toMatchObject({ app: 'kl', library: 'own-lib/2' });
    // The message's own app.name wins: mytool takes no keyless messages.
    const results = (r.json?.results ?? []) as { reason?: string }[];
    expect(results[2]?.reason).toBe('TMK_ERR_MISSING_WRITE_KEY');
    // Kept with the batch's context merged in: a replay of the kept message alone judges it the same.
    const kept = (await c.store.listQuarantine({ reason: 'TMK_ERR_MISSING_WRITE_KEY' })).find(
      (q) => q.messageId === 'kl-3',
    );
    expect(JSON.parse(kept?.raw ?? '{}').context).toEqual({
      app: { name: 'mytool' },
      library: { name: 'batch-lib', version: '1' },
    });
  });

  it('dates a RudderStack message by originalTimestamp, corrected by its own sentAt', async () => {
    const now = Date.now();
    const r = await postJson(
      `${c.url}/v1/batch`,
      {
        batch: [
          track('rs-1', {
            timestamp: undefined,
            // The device clock is an hour fast; the event happened ten minutes before it was sent.
            originalTimestamp: new Date(now + 3_600_000 - 600_000).toISOString(),
            sentAt: new Date(now + 3_600_000).toISOString(),
          }),
        ],
      },
      basic(MYTOOL_KEY),
    );
    expect([r.status, resultStatuses(r.json)]).toEqual([200, ['accepted']]);
    const stored = await row('rs-1');
    // About ten minutes ago, not "now" (the time it was received) nor an hour ahead.
    expect(Number(stored?.ts)).toBeLessThan(now - 500_000);
    expect(Number(stored?.ts)).toBeGreaterThan(now - 700_000);
  });

  it('says why a message with a userId and no anonymousId is refused, and keeps it without the userId', async () => {
    const r = await postJson(
      `${c.url}/v1/track`,
      { ...track('uid-1', { anonymousId: undefined }), userId: 'user@example.com' },
      basic(`${MYTOOL_KEY}:`),
    );
    expect(r.status).toBe(400);
    expect(r.json?.code).toBe('TMK_ERR_INVALID_MESSAGE');
    expect(String(r.json?.message)).toContain('userId');
    const kept = (await c.store.listQuarantine({ reason: 'TMK_ERR_INVALID_MESSAGE' })).find(
      (q) => q.messageId === 'uid-1',
    );
    expect(kept?.raw).toBeDefined();
    expect(kept?.raw).not.toContain('user@example.com');
  });

  it('refuses what it cannot store with a reason that names the fix, and keeps each message', async () => {
    const cases: [Record<string, unknown>, string, string][] = [
      // Segment's API fills in a missing messageId; a collector that dedupes on it cannot.
      [track('', { messageId: undefined }), 'TMK_ERR_MESSAGE_ID', 'the sender must set one'],
      [track('case-1', { type: 'Track' }), 'TMK_ERR_UNSUPPORTED_CALL', '"Track"'],
      [track('space-1', { event: ' run ' }), 'unknown_event', '" run "'],
      [track('str-1', { properties: { command: 'build', took: '100' } }), 'invalid_type', 'took'],
      [
        track('ts-1', { timestamp: undefined, originalTimestamp: 'yesterday' }),
        'TMK_ERR_INVALID_MESSAGE',
        'originalTimestamp',
      ],
    ];
    const r = await postJson(`${c.url}/v1/batch`, { batch: cases.map(([m]) => m) }, basic(MYTOOL_KEY));
    expect(r.status).toBe(200);
    const results = r.json?.results as { status: string; reason: string; detail: string }[];
    for (const [i, [, reason, detail]] of cases.entries()) {
      expect(results[i]).toMatchObject({ status: 'rejected', reason });
      expect(results[i]?.detail).toContain(detail);
    }
    const kept = await c.store.listQuarantine({ app: 'mytool' });
    for (const id of ['case-1', 'space-1', 'str-1', 'ts-1'])
      expect(kept.some((q) => q.messageId === id)).toBe(true);
    expect(kept.some((q) => q.reason === 'TMK_ERR_MESSAGE_ID')).toBe(true);
  });

  it('takes what the SDKs also send: null or absent properties, text/plain, charset, a BOM, key and body key', async () => {
    const install = (id: string, properties?: unknown) =>
      track(id, {
        event: 'install',
        ...(properties === undefined ? { properties: undefined } : { properties }),
      });
    // Python sends the key both ways; a key without the colon; text/plain (analytics.js beacons).
    const bodies: [unknown, Record<string, string>][] = [
      [{ writeKey: MYTOOL_KEY, batch: [install('misc-1', null)] }, basic(`${MYTOOL_KEY}:`)],
      [{ batch: [install('misc-2')] }, { ...basic(MYTOOL_KEY), 'content-type': 'text/plain;charset=UTF-8' }],
      [
        `\ufeff${JSON.stringify({ batch: [install('misc-3', {})] })}`,
        { ...basic(MYTOOL_KEY), 'content-type': 'application/json; charset=utf-8' },
      ],
    ];
    for (const [body, headers] of bodies) {
      const r = await postJson(`${c.url}/v1/batch`, body, headers);
      expect([r.status, resultStatuses(r.json)]).toEqual([200, ['accepted']]);
    }
  });

  it('measures the messages of a large batch that starts with a byte-order mark', async () => {
    const padding = 'x'.repeat(200);
    const batch = Array.from({ length: 300 }, (_, i) =>
      track(`bom-${i}`, { context: { library: { name: 'pad', version: padding } } }),
    );
    const r = await postJson(`${c.url}/v1/batch`, `\ufeff${JSON.stringify({ batch })}`, basic(MYTOOL_KEY));
    expect(r.status).toBe(200);
    expect(new Set(resultStatuses(r.json))).toEqual(new Set(['accepted']));
  });
});
