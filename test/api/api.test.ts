/**
 * The query API in-process (fastify + `registerApiRoutes` + `app.inject`) on a real DuckDB file holding the
 * hand-written analytics dataset: auth, parameter validation, and injection attempts in every parameter.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Fastify, { type FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { VIEW_NAMES } from '../../packages/server/src/analytics/index.js';
import { registerApiRoutes } from '../../packages/server/src/api/routes.js';
import { createEventBuilder } from '../../packages/server/src/pipeline/event-builder.js';
import { sampleEvent } from '../../packages/server/src/store/conformance.js';
import { createDuckDBStore } from '../../packages/server/src/store/duckdb/index.js';
import { sql } from '../../packages/server/src/store/sql.js';
import type { Store } from '../../packages/server/src/store/types.js';
import { APP, createTestRegistry, FROM, TO, writeDataset } from '../analytics/dataset.js';

const TOKEN = 'tmk_test-admin-token-0123456789';
const auth = { authorization: `Bearer ${TOKEN}` };
// The collector's builder; its default key stands in for a deployment's (the ids here need none).
const builder = createEventBuilder();

let dir: string;
let store: Store;
let app: FastifyInstance;

const get = (url: string, headers: Record<string, string> = auth) =>
  app.inject({ method: 'GET', url, headers });
const qs = (params: Record<string, string | string[]>) => {
  const search = new URLSearchParams();
  for (const [k, v] of Object.entries(params))
    for (const item of Array.isArray(v) ? v : [v]) search.append(k, item);
  return search.toString();
};
const range = { app: APP, from: FROM, to: TO };

beforeAll(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'telemark-'));
  store = createDuckDBStore({ path: path.join(dir, 'telemark.duckdb'), now: () => Date.UTC(2026, 10, 16) });
  await writeDataset(store);
  app = Fastify();
  await registerApiRoutes(app, {
    store,
    registry: createTestRegistry(),
    adminToken: TOKEN,
    builder,
    now: () => Date.UTC(2026, 10, 16),
  });
  await app.ready();
});

afterAll(async () => {
  await app?.close();
  await store?.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

describe('admin token', () => {
  it.each([
    ['no header', {}],
    ['wrong token', { authorization: 'Bearer nope' }],
    ['token as Basic', { authorization: `Basic ${TOKEN}` }],
    ['token with a suffix', { authorization: `Bearer ${TOKEN}x` }],
    ['empty bearer', { authorization: 'Bearer ' }],
  ])('%s → 401', async (_name, headers) => {
    for (const url of ['/api/v1/session', `/api/v1/overview?${qs(range)}`, '/api/v1/apps', '/api/v1/nope']) {
      const response = await get(url, headers as Record<string, string>);
      expect(response.statusCode).toBe(401);
      expect(response.json()).toMatchObject({ code: 'TMK_ERR_UNAUTHORIZED' });
      expect(response.headers['www-authenticate']).toBe('Bearer realm="telemark"');
      // Only a shutdown says when to come back: no empty Retry-After on other errors.
      expect(response.headers).not.toHaveProperty('retry-after');
    }
  });

  it('session answers with the right token (any case of "Bearer")', async () => {
    const response = await get('/api/v1/session', { authorization: `bearer ${TOKEN}` });
    expect(response.statusCode).toBe(200);
    expect(response.json()).toEqual({ ok: true, apps: ['acme', 'beta'] });
    expect(response.headers['cache-control']).toBe('no-store');
    expect(response.headers['x-content-type-options']).toBe('nosniff');
  });
});

describe('views', () => {
  it('apps lists each app with its catalog', async () => {
    const body = (await get('/api/v1/apps')).json();
    expect(body.apps.map((a: { name: string }) => a.name)).toEqual(['acme', 'beta']);
    expect(body.apps[0].catalog.outcomes.deploy.title).toBe('Deploys');
    expect(body.apps[0].fingerprint).toMatch(/^[0-9a-f]{16}$/);
  });

  it('every view answers with view, params and generatedMs', async () => {
    for (const view of VIEW_NAMES) {
      const response = await get(`/api/v1/${view}?${qs(range)}`);
      expect(response.statusCode, view).toBe(200);
      const body = response.json();
      expect(body.view).toBe(view);
      expect(body.params).toMatchObject({ app: APP, from: '2026-11-02T00:00:00.000Z', k: 5 });
      expect(typeof body.generatedMs).toBe('number');
    }
  });

  it('answers the same figures as the query layer (overview, funnel, repeatable filters)', async () => {
    const overview = (await get(`/api/v1/overview?${qs(range)}`)).json();
    expect([overview.events, overview.installs, overview.latestVersion]).toEqual([38, 5, '2.10.0']);
    const filtered = (await get(`/api/v1/overview?${qs({ ...range, os: ['Windows', 'Ubuntu'] })}`)).json();
    expect([filtered.events, filtered.installs]).toEqual([22, 3]);
    const funnel = (await get(`/api/v1/funnel?${qs({ ...range, window: '1300' })}`)).json();
    expect(funnel.steps.map((s: { sessions: number }) => s.sessions)).toEqual([6, 5, 4]);
  });

  it('error drill-down by fingerprint', async () => {
    const detail = (await get(`/api/v1/errors/fp-old?${qs(range)}`)).json();
    expect(detail).toMatchObject({ view: 'error', fingerprint: 'fp-old', count: 3, installs: 2 });
    expect(detail.samples[0]).toMatchObject({ appVersion: '2.10.0', text: 'connection refused' });
    const missing = await get(`/api/v1/errors/fp-none?${qs(range)}`);
    expect(missing.statusCode).toBe(404);
    expect(missing.json().code).toBe('TMK_ERR_NO_SUCH_ERROR');
  });

  it('defaults: the last 30 days up to now', async () => {
    const body = (await get(`/api/v1/trends?app=${APP}`)).json();
    expect(body.params).toMatchObject({
      from: '2026-10-17T00:00:00.000Z',
      to: '2026-11-16T00:00:00.000Z',
      interval: 'day',
    });
    expect(body.params.env).toEqual(['interactive', 'agent', 'dev', 'container', 'script', 'unknown']);
    expect(body.buckets).toHaveLength(30);
  });
});

describe('bad parameters → 400 naming the parameter', () => {
  it.each([
    ['missing app', { from: FROM }, /app: required/],
    ['unknown app', { app: 'nope' }, /app: no registered app "nope"; registered: acme, beta/],
    ['app twice', { app: [APP, 'beta'] }, /app: give it once/],
    [
      'bad interval',
      { ...range, interval: 'year' },
      /interval: expected one of hour, day, week, month, got "year"/,
    ],
    ['bad date', { ...range, from: '2026-13-45' }, /from: expected an ISO date/],
    // Date.parse rolled it over to 3 March.
    ['day that does not exist', { ...range, from: '2026-02-31' }, /from: expected an ISO date/],
    ['from after to', { app: APP, from: TO, to: FROM }, /must be before to/],
    [
      'too many buckets',
      { app: APP, from: '2025-01-01', to: TO, interval: 'hour' },
      /more than 1000 buckets/,
    ],
    ['bad env', { ...range, env: 'prod' }, /env: expected one of interactive, ci/],
    ['k zero', { ...range, k: '0' }, /k: expected an integer from 1 to 1000/],
    ['k not a number', { ...range, k: '5abc' }, /k: expected an integer/],
    ['unknown parameter', { ...range, evil: '1' }, /"evil" is not a parameter of overview/],
    ['includeCi yes', { ...range, includeCi: 'yes' }, /includeCi: expected 0 or 1/],
  ])('%s', async (_name, params, reason) => {
    const response = await get(`/api/v1/overview?${qs(params as Record<string, string | string[]>)}`);
    expect(response.statusCode).toBe(400);
    const body = response.json();
    expect(body.code).toBe('TMK_ERR_BAD_PARAMETER');
    expect(body.message).toMatch(reason);
  });

  it('view-specific parameters are checked against the catalog and closed lists', async () => {
    const cases: [string, Record<string, string>, RegExp][] = [
      ['breakdown', { dimension: 'install_id' }, /dimension: expected one of os_name/],
      ['trends', { event: 'rm -rf' }, /event: "rm -rf" is not an event of acme's catalog/],
      [
        'outcomes',
        { outcome: 'nope' },
        /outcome: "nope" is not an outcome of acme; one of: deploy, lookup, login/,
      ],
      ['outcomes', { breakdown: 'message_id' }, /breakdown: expected one of/],
      ['funnel', { funnel: 'nope' }, /funnel: "nope" is not a funnel of acme; one of: connect/],
      ['funnel', { window: '0' }, /window: expected seconds/],
      ['errors', { limit: '1000' }, /limit: expected an integer from 1 to 200/],
      ['retention', { weeks: '53' }, /weeks: expected an integer from 1 to 52/],
      ['overview', { dimension: 'os_name' }, /"dimension" is not a parameter of overview/],
    ];
    for (const [view, extra, reason] of cases) {
      const response = await get(`/api/v1/${view}?${qs({ ...range, ...extra })}`);
      expect(response.statusCode, `${view} ${JSON.stringify(extra)}`).toBe(400);
      expect(response.json().message).toMatch(reason);
    }
  });

  it('breakdown by a trait: only enum, boolean or enumList traits of the catalog (of the event, if named)', async () => {
    const cases: [Record<string, string>, RegExp][] = [
      [
        { dimension: 'trait:nope', event: 'login' },
        /dimension: "trait:nope" is not an enum, boolean or enumList trait of login; allowed: trait:method, trait:result, trait:scopes\.$/,
      ],
      // `error` is a free-text trait: never a breakdown.
      [
        { dimension: 'trait:error', event: 'deploy_fail' },
        /"trait:error" is not an enum, boolean or enumList trait of deploy_fail; allowed: \(none\)/,
      ],
      [
        { dimension: 'trait:error' },
        /"trait:error" is not an enum, boolean or enumList trait of acme's catalog; allowed: trait:found, trait:method/,
      ],
      [{ dimension: 'trait:Method' }, /dimension: expected one of os_name, .*, or trait:<name>/],
      [{ dimension: "trait:method' OR 1=1" }, /dimension: expected one of os_name/],
    ];
    for (const [extra, reason] of cases) {
      const response = await get(`/api/v1/breakdown?${qs({ ...range, ...extra })}`);
      expect(response.statusCode, JSON.stringify(extra)).toBe(400);
      expect(response.json()).toMatchObject({ code: 'TMK_ERR_BAD_PARAMETER' });
      expect(response.json().message, JSON.stringify(extra)).toMatch(reason);
    }
    const ok = await get(
      `/api/v1/breakdown?${qs({ ...range, dimension: 'trait:method', event: 'login', k: '1' })}`,
    );
    expect(ok.statusCode).toBe(200);
    expect(ok.json()).toMatchObject({
      params: { dimension: 'trait:method', event: ['login'] },
      dimension: 'trait:method',
      rows: [
        { value: 'browser', events: 4, installs: 4 },
        { value: 'token', events: 1, installs: 1 },
      ],
    });
  });

  it('every problem is reported at once', async () => {
    const body = (await get(`/api/v1/overview?${qs({ app: APP, interval: 'x', k: 'y', env: 'z' })}`)).json();
    expect(body.message).toMatch(/interval: .*; k: .*; env: /);
  });

  it('unknown views and paths → 404', async () => {
    for (const url of ['/api/v1/nope', '/api/v1/overview/extra', "/api/v1/overview'%20OR%201=1"]) {
      const response = await get(url);
      expect(response.statusCode, url).toBe(404);
      expect(response.json().code).toBe('TMK_ERR_UNKNOWN_VIEW');
    }
  });
});

describe('injection attempts are harmless', () => {
  const PAYLOADS = [
    "' OR 1=1 --",
    '"; DROP TABLE events; --',
    "2.10.0' UNION SELECT * FROM quarantine --",
    'ünïcødé 𝕏 \u202e\u0000 ☃',
    'x'.repeat(10_000),
    '$1',
    '/*',
  ];
  const PARAMETERS = [
    'app',
    'from',
    'to',
    'interval',
    'version',
    'os',
    'env',
    'includeCi',
    'k',
    'event',
    'outcome',
    'breakdown',
    'funnel',
    'window',
    'limit',
    'dimension',
    'weeks',
  ];
  const VIEW_OF: Record<string, string> = {
    event: 'trends',
    outcome: 'outcomes',
    breakdown: 'outcomes',
    funnel: 'funnel',
    window: 'funnel',
    limit: 'errors',
    dimension: 'breakdown',
    weeks: 'retention',
  };

  it('in every parameter, as a value and as an array: 400, or a literal that matches nothing', async () => {
    const before = await store.query(sql`SELECT count(*) AS n FROM events`);
    for (const parameter of PARAMETERS) {
      const view = VIEW_OF[parameter] ?? 'overview';
      for (const payload of PAYLOADS) {
        for (const value of [payload, [payload, payload], ['2.9.0', payload]]) {
          const params = { ...range, [parameter]: value };
          const response = await get(`/api/v1/${view}?${qs(params)}`);
          const label = `${parameter}=${JSON.stringify(value).slice(0, 60)}`;
          if (response.statusCode === 200) {
            // Only free-text filters may accept it, and then as a plain value that matches nothing.
            expect(['version', 'os'], label).toContain(parameter);
            const body = response.json();
            const expected = Array.isArray(value) && value.includes('2.9.0') ? 12 : 0;
            expect(body.events, label).toBe(parameter === 'version' ? expected : 0);
          } else {
            expect(response.statusCode, label).toBe(400);
            expect(response.json().code, label).toBe('TMK_ERR_BAD_PARAMETER');
          }
        }
      }
    }
    // Payloads in paths: the view name and the fingerprint.
    for (const payload of PAYLOADS.slice(0, 4)) {
      const view = await get(`/api/v1/${encodeURIComponent(payload)}?${qs(range)}`);
      expect(view.statusCode).toBe(404);
      const fingerprint = await get(`/api/v1/errors/${encodeURIComponent(payload)}?${qs(range)}`);
      expect([400, 404]).toContain(fingerprint.statusCode);
    }
    const after = await store.query(sql`SELECT count(*) AS n FROM events`);
    expect(after).toEqual(before);
    expect(Number(after[0]!.n)).toBe(49);
    const overview = (await get(`/api/v1/overview?${qs(range)}`)).json();
    expect(overview.events).toBe(38);
  });
});

describe('erasure: POST /api/v1/erasures', () => {
  const erase = (body: unknown, headers: Record<string, string> = auth) =>
    app.inject({ method: 'POST', url: '/api/v1/erasures', headers, payload: body as object });
  const eventsOf = async (install: string) =>
    Number(
      (
        await store.query<{ n: unknown }>(sql`SELECT count(*) AS n FROM events WHERE install_id = ${install}`)
      )[0]?.n,
    );

  it('needs the admin token, like every other route', async () => {
    const response = await erase({ app: APP, installId: 'i3' }, {});
    expect(response.statusCode).toBe(401);
    expect(response.json().code).toBe('TMK_ERR_UNAUTHORIZED');
    expect(await eventsOf('i3')).toBe(7);
  });

  it('refuses what nothing stored can be, every problem at once', async () => {
    const response = await erase({ app: 'not an app', installId: 'x'.repeat(101) });
    expect(response.statusCode).toBe(400);
    expect(response.json()).toMatchObject({
      code: 'TMK_ERR_BAD_PARAMETER',
      detail:
        'app: 1–64 letters, digits, ".", "_" or "-", as registered; installId: a string of 1 to 100 characters',
    });
    expect((await erase({ app: APP })).json().detail).toBe('installId: a string of 1 to 100 characters');
    expect((await erase([APP, 'i3'])).statusCode).toBe(400);
    expect(await eventsOf('i3')).toBe(7);
  });

  it('erases one install of one app and answers what went; again, nothing', async () => {
    const response = await erase({ app: APP, installId: 'i3' });
    expect(response.statusCode).toBe(200);
    expect(response.headers['cache-control']).toBe('no-store');
    expect(response.json()).toEqual({ app: APP, installId: 'i3', events: 7, quarantine: 0 });
    expect(await eventsOf('i3')).toBe(0);
    expect(await eventsOf('i1')).toBeGreaterThan(0);
    expect((await erase({ app: APP, installId: 'i3' })).json()).toEqual({
      app: APP,
      installId: 'i3',
      events: 0,
      quarantine: 0,
    });
  });

  it('refuses an app neither registered nor in the store (a typo would read "0 erased" as done)', async () => {
    const typo = await erase({ app: `${APP}x`, installId: 'i1' });
    expect(typo.statusCode).toBe(400);
    expect(typo.json()).toMatchObject({
      code: 'TMK_ERR_UNKNOWN_APP',
      detail: `"${APP}x" (registered: ${createTestRegistry()
        .list()
        .map((a) => a.name)
        .join(', ')})`,
      message: expect.stringContaining('check the app name (nothing was erased)'),
    });
    expect(await eventsOf('i1')).toBeGreaterThan(0);
  });

  it('still erases an app taken out of the config whose data the store holds', async () => {
    await store.write({
      events: [sampleEvent({ app: 'retired', messageId: 'r1', installId: 'gone' })],
      quarantine: [],
      counters: [],
    });
    const response = await erase({ app: 'retired', installId: 'gone' });
    expect(response.statusCode).toBe(200);
    expect(response.json()).toEqual({ app: 'retired', installId: 'gone', events: 1, quarantine: 0 });
  });
});

describe('quarantine: GET /api/v1/quarantine', () => {
  it('lists refused inputs newest first, filtered by app and reason, raw input included', async () => {
    const all = await get(`/api/v1/quarantine?${qs({ app: APP })}`);
    expect(all.statusCode).toBe(200);
    const entries = all.json().entries as { app: string; reason: string; receivedAt: number; raw: string }[];
    expect(entries.map((e) => [e.reason, new Date(e.receivedAt).toISOString().slice(0, 10)])).toEqual([
      ['invalid_type', '2026-11-05'],
      ['unknown_event', '2026-11-03'],
      ['unknown_event', '2026-10-30'],
    ]);
    expect(entries.every((e) => e.app === APP && e.raw === '{"event":"nope"}')).toBe(true);
    const one = (
      await get(`/api/v1/quarantine?${qs({ app: APP, reason: 'unknown_event', limit: '1' })}`)
    ).json();
    expect(
      one.entries.map((e: { receivedAt: number }) => new Date(e.receivedAt).toISOString().slice(0, 10)),
    ).toEqual(['2026-11-03']);
  });

  it('needs the admin token, and reports every bad parameter at once', async () => {
    expect((await get('/api/v1/quarantine', {})).statusCode).toBe(401);
    const bad = await get(`/api/v1/quarantine?${qs({ limit: '0', reason: "x' OR 1=1", foo: '1' })}`);
    expect(bad.statusCode).toBe(400);
    expect(bad.json().code).toBe('TMK_ERR_BAD_PARAMETER');
    expect(
      bad
        .json()
        .detail.split('; ')
        .map((p: string) => p.split(':')[0]),
    ).toEqual(['foo', 'reason', 'limit']);
    // Replay takes a filter, not a page; it needs the token like the rest.
    const replay = (query: string, headers: Record<string, string> = auth) =>
      app.inject({ method: 'POST', url: `/api/v1/quarantine/replay${query}`, headers });
    expect((await replay('', {})).statusCode).toBe(401);
    const paged = await replay('?limit=5');
    expect([paged.statusCode, paged.json().detail]).toEqual([
      400,
      'limit: not a parameter here (app, reason, since, until)',
    ]);
  });

  it('filters by when entries were quarantined (since inclusive, until exclusive), ISO dates or times', async () => {
    const days = async (params: Record<string, string>) =>
      (await get(`/api/v1/quarantine?${qs({ app: APP, ...params })}`))
        .json()
        .entries.map((e: { receivedAt: number }) => new Date(e.receivedAt).toISOString().slice(0, 10));
    expect(await days({ since: '2026-11-03T12:00:00Z' })).toEqual(['2026-11-05', '2026-11-03']);
    expect(await days({ since: '2026-11-03T12:00:00.001Z' })).toEqual(['2026-11-05']);
    expect(await days({ until: '2026-11-03T12:00:00Z' })).toEqual(['2026-10-30']);
    expect(await days({ since: '2026-10-31', until: '2026-11-04T00:00:00+01:00' })).toEqual(['2026-11-03']);
    // The replay takes them too: nothing was quarantined then, so nothing is examined.
    const replay = await app.inject({
      method: 'POST',
      url: `/api/v1/quarantine/replay?${qs({ app: APP, since: '2026-11-06' })}`,
      headers: auth,
    });
    expect([replay.statusCode, replay.json().examined]).toEqual([200, 0]);
    const bad = await get(
      `/api/v1/quarantine?${qs({ since: '7d', until: 'yesterday', cursor: 'nope', limit: '1001' })}`,
    );
    expect(bad.statusCode).toBe(400);
    expect(
      bad
        .json()
        .detail.split('; ')
        .map((p: string) => p.split(':')[0]),
    ).toEqual(['since', 'until', 'limit', 'cursor']);
    const backwards = await get(`/api/v1/quarantine?${qs({ since: '2026-11-05', until: '2026-11-01' })}`);
    expect(backwards.json().detail).toBe('since: must be before until');
  });

  it('pages: each answer with more after it gives the cursor of the next, to the last entry', async () => {
    const pagedApp = 'paged';
    const t = Date.UTC(2026, 10, 10);
    // Five entries, two of them at the same time: a page may end between them.
    await store.write({
      events: [],
      counters: [],
      quarantine: [t, t + 1, t + 1, t + 2, t + 3].map((receivedAt, i) => ({
        app: pagedApp,
        receivedAt,
        protocol: 'segment' as const,
        reason: 'unknown_event',
        detail: `entry ${i}`,
        messageId: `p${i}`,
        event: 'nope',
        raw: '{}',
      })),
    });
    const whole = (await get(`/api/v1/quarantine?${qs({ app: pagedApp })}`)).json();
    expect(whole.next).toBeUndefined();
    expect(whole.entries).toHaveLength(5);
    const pages: string[][] = [];
    let cursor: string | undefined;
    do {
      const answer = (
        await get(`/api/v1/quarantine?${qs({ app: pagedApp, limit: '2', ...(cursor ? { cursor } : {}) })}`)
      ).json();
      pages.push(answer.entries.map((e: { id: string }) => e.id));
      cursor = answer.next;
    } while (cursor !== undefined);
    expect(pages.map((p) => p.length)).toEqual([2, 2, 1]);
    expect(pages.flat()).toEqual(whole.entries.map((e: { id: string }) => e.id));
    // A page that ends at the last entry says so: no cursor to an empty page.
    const exact = (await get(`/api/v1/quarantine?${qs({ app: pagedApp, limit: '5' })}`)).json();
    expect([exact.entries.length, exact.next]).toEqual([5, undefined]);
  });

  it('lists the entries of no app with app= (empty), and only those', async () => {
    await store.write({
      events: [],
      counters: [],
      quarantine: [
        {
          app: '',
          receivedAt: Date.UTC(2026, 10, 12),
          protocol: 'segment',
          reason: 'TMK_ERR_BAD_WRITE_KEY',
          detail: '',
          messageId: '',
          event: '',
          raw: '{"batch":[]}',
        },
      ],
    });
    const answer = await get('/api/v1/quarantine?app=');
    expect(answer.statusCode).toBe(200);
    const entries = answer.json().entries as { app: string; reason: string }[];
    expect(entries.length).toBeGreaterThan(0);
    expect(entries.every((e) => e.app === '')).toBe(true);
    expect(entries.map((e) => e.reason)).toContain('TMK_ERR_BAD_WRITE_KEY');
  });
});

describe('quarantine replay: POST /api/v1/quarantine/replay', () => {
  it('runs one replay at a time, however many are asked for at once', async () => {
    let running = 0;
    let most = 0;
    const watched: Store = {
      ...store,
      async listQuarantine(filter) {
        running++;
        most = Math.max(most, running);
        try {
          await new Promise((r) => setTimeout(r, 30));
          return await store.listQuarantine(filter);
        } finally {
          running--;
        }
      },
    };
    const other = Fastify();
    await registerApiRoutes(other, {
      store: watched,
      registry: createTestRegistry(),
      adminToken: TOKEN,
      builder,
    });
    try {
      const answers = await Promise.all(
        [1, 2, 3].map(() =>
          other.inject({ method: 'POST', url: `/api/v1/quarantine/replay?app=${APP}`, headers: auth }),
        ),
      );
      expect(answers.map((a) => [a.statusCode, a.json().examined])).toEqual([
        [200, 3],
        [200, 3],
        [200, 3],
      ]);
      expect(most).toBe(1);
    } finally {
      await other.close();
    }
  });
});

describe('a replay or an erasure answered as lines (Accept: application/x-ndjson)', () => {
  it('says where it stands at least every heartbeat (the API deps’), then its result; plain JSON otherwise', async () => {
    const slow: Store = {
      ...store,
      async listQuarantine(filter) {
        await new Promise((r) => setTimeout(r, 200));
        return store.listQuarantine(filter);
      },
    };
    const other = Fastify();
    await registerApiRoutes(other, {
      store: slow,
      registry: createTestRegistry(),
      adminToken: TOKEN,
      builder,
      heartbeatMs: 20,
    });
    try {
      const replay = (accept: string) =>
        other.inject({
          method: 'POST',
          url: `/api/v1/quarantine/replay?app=${APP}`,
          headers: { ...auth, accept },
        });
      const streamed = await replay('application/json;q=0.5, application/x-ndjson');
      expect(streamed.statusCode).toBe(200);
      expect(streamed.headers['content-type']).toBe('application/x-ndjson');
      expect(streamed.headers['cache-control']).toBe('no-store');
      const lines = streamed.body
        .trimEnd()
        .split('\n')
        .map((line) => JSON.parse(line) as Record<string, unknown>);
      expect(lines.at(-1)).toEqual({ result: expect.objectContaining({ examined: 3 }) });
      // The listing takes ten heartbeats: more than the two changes of state were said meanwhile.
      expect(lines.filter((line) => JSON.stringify(line) === '{"waiting":"running"}').length).toBeGreaterThan(
        1,
      );
      for (const line of lines.slice(0, -1))
        expect(Object.keys(line)).toEqual([expect.stringMatching(/^(waiting|progress)$/)]);

      const declined = await replay('application/x-ndjson;q=0, application/json');
      expect(declined.headers['content-type']).toMatch(/^application\/json/);
      expect(declined.json()).toMatchObject({ examined: 3 });
    } finally {
      await other.close();
    }
  });
});
