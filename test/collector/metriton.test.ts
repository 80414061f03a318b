import { request } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { telepresence } from '../../packages/client/src/catalogs/telepresence.js';
import { resolveServeConfig } from '../../packages/server/src/config/serve-config.js';
import {
  connectReport,
  goIndent,
  interceptFailReport,
  legacyReport,
  TP_INSTALL_ID,
  TP_TRACE_ID,
  tpReport,
  updateRoutesReport,
} from '../../packages/server/src/ingest/_metriton-fixtures.js';
import { replayQuarantine } from '../../packages/server/src/pipeline/replay.js';
import { sql } from '../../packages/server/src/store/sql.js';
import { type InProcess, openData, startInProcess } from './_helpers.js';

/** POST the way Go's http.DefaultClient does it: exact headers, nothing else. */
function goPost(url: string, body: string, contentType: string | undefined = 'application/json') {
  return new Promise<{ status: number; body: string }>((resolve, reject) => {
    const headers: Record<string, string | number> = {
      'User-Agent': 'Go-http-client/1.1',
      'Content-Length': Buffer.byteLength(body),
      'Accept-Encoding': 'gzip',
    };
    if (contentType) headers['Content-Type'] = contentType;
    const req = request(url, { method: 'POST', headers }, (res) => {
      let text = '';
      res.on('data', (d: Buffer) => {
        text += d.toString();
      });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

describe('Metriton reports exactly as Telepresence 2.20 sends them', () => {
  let c: InProcess;
  beforeAll(async () => {
    c = await startInProcess({
      config: {
        apps: {
          telepresence2: {
            latestVersion: '2.20.3',
            notices: [{ id: 'moved', text: 'Telemetry now goes to our own collector.' }],
          },
        },
      },
    });
  });
  afterAll(async () => {
    await c?.stop();
  });

  it('stores a connect report as the right event with context and traits, answering in Metriton shape', async () => {
    const response = await goPost(`${c.url}/scout`, goIndent(connectReport));
    expect(response.status).toBe(200);
    expect(JSON.parse(response.body)).toEqual({
      application: 'telepresence2',
      latest_version: '2.20.3',
      notices: [{ id: 'moved', text: 'Telemetry now goes to our own collector.' }],
      disable_scout: false,
    });
    const [row] = await c.store.query<Record<string, unknown>>(
      sql`SELECT * FROM events WHERE app = ${'telepresence2'} AND event = ${'connect'}`,
    );
    expect(row).toMatchObject({
      install_id: TP_INSTALL_ID,
      session_id: TP_TRACE_ID,
      seq: 3,
      app_version: '2.20.2',
      mode: 'connector',
      platform: 'linux',
      arch: 'x64',
      os_name: 'ubuntu',
      os_version: '22.04.4 LTS (Jammy Jellyfish)',
      os_build: 'unknown',
      container: false,
      install_method: 'website',
      new_install: false,
      protocol: 'metriton',
      env_class: 'ci',
      traits: { time_to_connect: 2.873, mapped_namespaces: 0 },
      extra: { github_actions_integration: true },
    });
    expect(JSON.stringify(row)).not.toMatch(/cluster_id|9c3a7d0e|manager_version|alice/);
  });

  it('treats a resend of the same report as a duplicate', async () => {
    const body = goIndent(legacyReport);
    expect((await goPost(`${c.url}/scout`, body)).status).toBe(200);
    expect((await goPost(`${c.url}/scout`, body, undefined)).status).toBe(200);
    expect((await goPost(`${c.url}/beta/scout`, body, 'text/plain')).status).toBe(200);
    const rows = await c.store.query<Record<string, unknown>>(
      sql`SELECT traits FROM events WHERE event = ${'Used legacy syntax'}`,
    );
    expect(rows).toHaveLength(1);
    expect(rows[0]?.traits).toEqual({
      swap_deployment: true,
      run: true,
      unsupported_flags: ['--also-proxy', '--expose-foo'],
    });
    const metrics = await (await fetch(`${c.url}/metrics`)).text();
    expect(metrics).toMatch(/telemark_events_total\{app="telepresence2",status="duplicate",reason=""\} 2/);
    expect(metrics).toMatch(/telemark_request_duration_seconds_count\{route="scout",status="200"\} [1-9]/);
  });

  it('keeps errors scrubbed with a fingerprint, and drops the workload names around them', async () => {
    expect((await goPost(`${c.url}/scout`, goIndent(interceptFailReport))).status).toBe(200);
    const [row] = await c.store.query<Record<string, unknown>>(
      sql`SELECT traits, error_text, error_fingerprint, mode FROM events WHERE event = ${'intercept_fail'}`,
    );
    expect(row?.mode).toBe('cli');
    expect(String(row?.error_text)).toContain('No interceptable deployment');
    expect(String(row?.error_fingerprint)).toMatch(/^[0-9a-f]{16}$/);
    // Telepresence sent its errors raw; the collector scrubs them before they are stored.
    expect(String(row?.error_text)).not.toContain('echo-easy');
    expect(JSON.stringify(row?.traits)).not.toContain('echo-easy');
    expect(Object.keys(row?.traits as object)).toEqual(['error']);
  });

  it('quarantines events outside the catalog (400, Metriton shape) without the keys it must not keep', async () => {
    const response = await goPost(`${c.url}/scout`, goIndent(updateRoutesReport));
    expect(response.status).toBe(400);
    expect(JSON.parse(response.body)).toMatchObject({
      application: 'telepresence2',
      code: 'unknown_event',
      message: expect.stringContaining('"update_routes"'),
    });
    const [entry] = await c.store.listQuarantine({ app: 'telepresence2', reason: 'unknown_event' });
    expect(entry?.event).toBe('update_routes');
    // Kept with the keys a later catalog may declare, without the cluster's id.
    expect(JSON.parse(entry?.raw ?? '{}').metadata).toMatchObject({
      subnets: 3,
      allow_conflicting_subnets: 0,
    });
    expect(entry?.raw).not.toContain('cluster_id');
    // A code's answer is its whole sentence, not only the fragment kept as the detail.
    const noAction = await goPost(`${c.url}/scout`, goIndent(tpReport({ action: '' })));
    expect([noAction.status, JSON.parse(noAction.body).message]).toEqual([
      400,
      'The message is malformed (metadata.action must be a string of 1 to 200 characters); see the message format in docs/collector.md.',
    ]);
  });

  it('answers an unknown application with an empty body, as Metriton did', async () => {
    const response = await goPost(
      `${c.url}/scout`,
      goIndent(tpReport({ action: 'test', sha: 'deadbeef' }, { application: 'telepresence-tests' })),
    );
    expect(response).toEqual({ status: 200, body: '' });
    const kept = await c.store.listQuarantine({ reason: 'TMK_ERR_UNKNOWN_APP' });
    expect(kept.some((q) => q.raw.includes('telepresence-tests'))).toBe(true);
    // Answered 200, as Metriton did, but counted as the refusal it is.
    const metrics = await (await fetch(`${c.url}/metrics`)).text();
    expect(metrics).toMatch(
      /telemark_requests_rejected_total\{route="scout",code="TMK_ERR_UNKNOWN_APP"\} [1-9]/,
    );
  });

  it("answers a rate-limited report in Metriton's shape, with Retry-After", async () => {
    const limited = await startInProcess({
      config: {
        apps: {
          telepresence2: {
            latestVersion: '2.20.3',
            rateLimits: { perInstall: { perSecond: 0.01, burst: 1 } },
          },
        },
      },
    });
    try {
      const report = (index: number) => goIndent(tpReport({ action: 'vpn_diag_pass', index, mode: 'cli' }));
      expect((await goPost(`${limited.url}/scout`, report(1))).status).toBe(200);
      const second = await fetch(`${limited.url}/scout`, { method: 'POST', body: report(2) });
      expect(second.status).toBe(429);
      expect(Number(second.headers.get('retry-after'))).toBeGreaterThan(0);
      expect(await second.json()).toMatchObject({
        application: 'telepresence2',
        latest_version: '2.20.3',
        disable_scout: false,
        code: 'TMK_ERR_RATE_LIMITED',
      });
    } finally {
      await limited.stop();
    }
  });

  it('reports the kill switch as disable_scout', async () => {
    const killed = await startInProcess({
      config: { apps: { telepresence2: { disableUntil: new Date(Date.now() + 3_600_000).toISOString() } } },
    });
    try {
      const response = await goPost(
        `${killed.url}/scout`,
        goIndent(tpReport({ action: 'vpn_diag_pass', index: 1, mode: 'cli' })),
      );
      expect(JSON.parse(response.body).disable_scout).toBe(true);
    } finally {
      await killed.stop();
    }
  });
});

describe('a Telepresence event the catalog lacks, after the catalog is fixed', () => {
  it('is replayed from quarantine with its traits', async () => {
    const before = await startInProcess();
    const report = tpReport({
      action: 'connect_error',
      index: 2,
      mode: 'connector',
      cluster_id: '9c3a7d0e-1111-4b4b-8c8c-0123456789ab',
      error: 'traffic manager not found in namespace payments-prod',
      error_type: 'TRAFFIC_MANAGER_FAILED',
      error_category: 2,
      time_to_fail: 1.25,
    });
    try {
      expect((await goPost(`${before.url}/scout`, goIndent(report))).status).toBe(400);
    } finally {
      await before.stop();
    }
    const fixed = {
      ...telepresence.input,
      events: {
        ...telepresence.input.events,
        connect_error: {
          description: 'A connect failed.',
          traits: {
            error: { type: 'error', required: true },
            error_type: {
              type: 'enum',
              values: ['CLUSTER_FAILED', 'TRAFFIC_MANAGER_FAILED', 'DAEMON_FAILED'],
            },
            error_category: { type: 'integer' },
            time_to_fail: { type: 'duration', unit: 's' },
          },
        },
      },
    };
    const store = await openData(before.dataDir);
    try {
      const { registry } = resolveServeConfig({ apps: { telepresence2: { catalog: fixed } } });
      expect(await replayQuarantine(store, registry, { reason: 'unknown_event' })).toMatchObject({
        replayed: 1,
        accepted: 1,
      });
      const rows = await store.query<{ event: string; traits: unknown; error_text: string }>(
        sql`SELECT event, traits, error_text FROM events WHERE event = 'connect_error'`,
      );
      expect(rows).toHaveLength(1);
      const traits = typeof rows[0]?.traits === 'string' ? JSON.parse(rows[0].traits) : rows[0]?.traits;
      expect(traits).toMatchObject({
        error_type: 'TRAFFIC_MANAGER_FAILED',
        error_category: 2,
        time_to_fail: 1.25,
      });
      expect(rows[0]?.error_text).toContain('traffic manager not found');
      expect(JSON.stringify(rows)).not.toContain('9c3a7d0e');
    } finally {
      await store.close();
    }
  });
});
