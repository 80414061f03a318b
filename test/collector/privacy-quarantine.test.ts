/**
 * What client-sent data lands where: a Segment message full of identifying fields (Segment's spec
 * allows them all), stored, quarantined and refused whole; extra context of our own client.
 */
import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { resolveServeConfig } from '../../packages/server/src/config/serve-config.js';
import { raw } from '../../packages/server/src/store/sql.js';
import { bearer, type InProcess, ourMessage, postJson, startInProcess } from './_helpers.js';

const KEY = 'wk_privacy_0123456789';
const CATALOG = {
  app: 'privacy',
  title: 'Privacy',
  extraContext: { envPrefix: 'PRIVACY_', keys: { fast: { type: 'boolean' } } },
  events: {
    run: {
      description: 'A run.',
      traits: {
        command: { type: 'enum', values: ['build'], required: true },
        note: { type: 'string', maxLength: 500 },
        user: { type: 'string', maxLength: 100, hashed: true },
      },
    },
  },
};
const HMAC = 'a'.repeat(64);
const IDENTIFYING_CONTEXT = {
  ip: '203.0.113.77',
  userAgent: 'Mozilla/5.0 UA-SECRET',
  device: { id: 'DEVICE-SECRET', advertisingId: 'ADID-SECRET', type: 'ios' },
  location: { city: 'CITY-SECRET', latitude: 40.1 },
  network: { carrier: 'CARRIER-SECRET' },
  page: { url: 'https://example.com/?q=PAGE-SECRET', referrer: 'REFERRER-SECRET', search: '?SEARCH-SECRET' },
  campaign: { name: 'CAMPAIGN-SECRET' },
  traits: { email: 'ctx-traits@example.com' },
  groupId: 'GROUP-SECRET',
  app: { name: 'privacy', version: '1.0.0' },
  os: { name: 'ubuntu', version: '24.04' },
  library: { name: 'analytics-node', version: '1' },
};
const NOTE = 'mail jdoe@example.com at /home/jdoe/acme 10.1.2.3 ghp_abcdefghijklmnopqrstuvwxyz0123456789';
const message = (messageId: string, overrides: Record<string, unknown> = {}) => ({
  type: 'track',
  messageId,
  anonymousId: 'install-1',
  userId: 'USERID-SECRET',
  previousId: 'PREVIOUS-SECRET',
  traits: { email: 'top-traits@example.com' },
  integrations: { 'Google Analytics': { clientId: 'INTEGRATION-SECRET' } },
  event: 'run',
  properties: { command: 'build', note: NOTE, user: HMAC },
  context: IDENTIFYING_CONTEXT,
  timestamp: new Date().toISOString(),
  ...overrides,
});
const SECRETS = [
  '203.0.113',
  '198.51.100',
  'SECRET',
  'traits@example.com',
  'jdoe',
  'acme',
  '10.1.2.3',
  'ghp_',
  'Mozilla',
];
const leaks = (text: string) => SECRETS.filter((s) => text.includes(s));

let c: InProcess;
beforeAll(async () => {
  c = await startInProcess({
    config: { apps: { privacy: { catalog: CATALOG, writeKeys: [KEY], allowKeyless: false } } },
  });
});
afterAll(async () => {
  await c.stop();
});

const headers = { ...bearer(KEY), 'x-forwarded-for': '198.51.100.99', 'user-agent': 'Mozilla SECRET' };
const quarantined = async (messageId: string) =>
  (await c.store.listQuarantine({})).filter((q) => q.messageId === messageId);

describe('privacy: what a quarantined Segment message keeps', () => {
  it('keeps no context key Telemark never reads, no user or group id, and scrubs the properties', async () => {
    const answer = await postJson(
      `${c.url}/v1/batch`,
      { batch: [message('pq-unknown', { event: 'not-in-catalog' })], context: { ip: '203.0.113.88' } },
      headers,
    );
    expect(answer.status).toBe(200);
    const [kept] = await quarantined('pq-unknown');
    expect(kept).toBeDefined();
    expect(leaks(kept!.raw)).toEqual([]);
    const value = JSON.parse(kept!.raw);
    expect(Object.keys(value.context).sort()).toEqual(['app', 'library', 'os']);
    // Scrubbed as a stored event's free text is; a hashed trait (an HMAC) is kept as sent, for a replay.
    expect(value.properties.note).toBe('mail <email> at <home>/<path> <ip> <token>');
  });

  it("keeps a known event's hashed trait (an HMAC) as sent, for a replay", async () => {
    const properties = { command: 'deploy', note: NOTE, user: HMAC };
    await postJson(`${c.url}/v1/batch`, { batch: [message('pq-enum', { properties })] }, headers);
    const [kept] = await quarantined('pq-enum');
    expect(kept?.reason).toBe('invalid_enum');
    expect(leaks(kept!.raw)).toEqual([]);
    expect(JSON.parse(kept!.raw).properties.user).toBe(HMAC);
  });

  it('a whole body refused (bad key) keeps neither the batch context nor the body identifiers', async () => {
    const before = (await c.store.listQuarantine({ reason: 'TMK_ERR_BAD_WRITE_KEY' })).length;
    const answer = await postJson(
      `${c.url}/v1/batch`,
      { batch: [message('pq-badkey')], context: IDENTIFYING_CONTEXT, userId: 'USERID-SECRET' },
      { ...headers, authorization: 'Bearer wk_nope_0123456789' },
    );
    expect(answer.status).toBe(401);
    const kept = await c.store.listQuarantine({ reason: 'TMK_ERR_BAD_WRITE_KEY' });
    expect(kept.length).toBe(before + 1);
    const last = kept.find((q) => q.raw.includes('pq-badkey'));
    expect(last).toBeDefined();
    expect(leaks(last!.raw)).toEqual([]);
  });

  it('a body that is not a batch keeps no client address or user traits either', async () => {
    const answer = await postJson(
      `${c.url}/v1/batch`,
      { batch: 'pq-notbatch', context: IDENTIFYING_CONTEXT, traits: { email: 'top-traits@example.com' } },
      headers,
    );
    expect(answer.status).toBe(400);
    const kept = (await c.store.listQuarantine({ reason: 'TMK_ERR_BAD_BATCH' })).find((q) =>
      q.raw.includes('pq-notbatch'),
    );
    expect(kept).toBeDefined();
    expect(leaks(kept!.raw)).toEqual([]);
  });
});

describe('privacy: what a body refused as bad gzip keeps', () => {
  const badGzip = async (messageId: string, body: Buffer) => {
    const answer = await postJson(`${c.url}/v1/batch`, body, {
      ...headers,
      'content-type': 'application/json',
      'content-encoding': 'gzip',
    });
    expect(answer.status).toBe(400);
    expect(answer.json).toMatchObject({ code: 'TMK_ERR_BAD_GZIP' });
    const kept = (await c.store.listQuarantine({ reason: 'TMK_ERR_BAD_GZIP' })).find((q) =>
      q.raw.includes(messageId),
    );
    expect(kept).toBeDefined();
    return kept!.raw;
  };

  it('plain JSON sent as gzip is kept as a refused batch is: readable, without what is never kept', async () => {
    const raw = await badGzip(
      'pq-plaingz',
      Buffer.from(JSON.stringify({ batch: [message('pq-plaingz')], context: IDENTIFYING_CONTEXT })),
    );
    expect(raw).not.toMatch(/^base64:/);
    expect(leaks(raw)).toEqual([]);
  });

  it('a Metriton report sent as gzip but plain keeps its strings scrubbed', async () => {
    const report = {
      application: 'telepresence2',
      install_id: 'pq-scoutgz',
      version: 'v2.20.0',
      metadata: { action: 'connect', install_id_error: 'open /home/jdoe/.config/id: jdoe@example.com' },
    };
    const answer = await postJson(`${c.url}/scout`, Buffer.from(JSON.stringify(report)), {
      'content-type': 'application/json',
      'content-encoding': 'gzip',
    });
    expect(answer.status).toBe(400);
    const kept = (await c.store.listQuarantine({ reason: 'TMK_ERR_BAD_GZIP' })).find((q) =>
      q.raw.includes('install_id_error'),
    );
    expect(kept?.raw).toContain('<home>');
    expect(leaks(kept?.raw ?? 'jdoe')).toEqual([]);
  });

  it('a truncated gzip upload keeps what inflates of it, scrubbed as text', async () => {
    const whole = gzipSync(JSON.stringify({ batch: [message('pq-cutgz')] }));
    const raw = await badGzip('pq-cutgz', whole.subarray(0, whole.length - 10));
    // Not JSON: kept as text, which the scrubber cleans of addresses, e-mail, paths and tokens.
    expect(raw).toContain('<email>');
    expect(leaks(raw).filter((s) => !/SECRET|Mozilla/.test(s))).toEqual([]);
  });
});

describe('privacy: what a stored event keeps', () => {
  it('stores only scrubbed text, no request address or header, anywhere', async () => {
    const sent = message('pq-stored');
    expect((await postJson(`${c.url}/v1/batch`, { batch: [sent] }, headers)).status).toBe(200);
    const rows = await c.store.query<Record<string, unknown>>(
      raw("SELECT * FROM events WHERE message_id = 'pq-stored'"),
    );
    expect(rows).toHaveLength(1);
    expect(leaks(JSON.stringify(rows))).toEqual([]);
    expect(leaks(c.logs.join('\n'))).toEqual([]);
    expect(leaks(await (await fetch(`${c.url}/metrics`)).text())).toEqual([]);
  });

  it('refuses a catalog that declares free-text extra context: it is sent as read, never scrubbed', () => {
    const withText = {
      ...CATALOG,
      extraContext: { envPrefix: 'PRIVACY_', keys: { cluster: { type: 'string', maxLength: 200 } } },
    };
    expect(() => resolveServeConfig({ apps: { privacy: { catalog: withText, writeKeys: [KEY] } } })).toThrow(
      /extraContext\.cluster: type "string" is not allowed \(boolean, integer or enum only\)/,
    );
  });

  it('keeps declared extra context, typed, and nothing else of context.cli.extra', async () => {
    const base = ourMessage('pq-extra');
    const sent = {
      ...base,
      properties: { command: 'build' },
      context: {
        ...base.context,
        app: { name: 'privacy', version: '1.0.0' },
        cli: {
          ...base.context.cli,
          extra: { fast: true, cluster: 'gke_acme_europe_prod at /home/jdoe/x 10.1.2.3' },
        },
      },
    };
    expect((await postJson(`${c.url}/v1/batch`, { batch: [sent] }, bearer(KEY))).status).toBe(200);
    const [row] = await c.store.query<{ extra: unknown }>(
      raw("SELECT extra FROM events WHERE message_id = 'pq-extra'"),
    );
    const extra = typeof row!.extra === 'string' ? JSON.parse(row!.extra) : row!.extra;
    expect(extra).toEqual({ fast: true });
  });
});
