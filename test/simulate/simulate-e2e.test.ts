/**
 * `telemark simulate` end to end: the built CLI bulk-loads a real DuckDB file through the collector's
 * pipeline, and posts to a real collector's /v1/batch, retrying its 429s.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TELEPRESENCE_REGRESSION_MARKER } from '../../packages/server/src/simulate/telepresence.js';
import { openDataDirStore } from '../../packages/server/src/store/index.js';
import { sql } from '../../packages/server/src/store/sql.js';
import { api, runCli, type Served, startServe, tempDir } from '../dashboard/_harness.js';

interface Result {
  events: number;
  installs: number;
  days: number;
  accepted: number;
  duplicates: number;
  rejected: number;
  rejectReasons: { reason: string; count: number }[];
}

const num = (v: unknown): number => Number(v);

describe('telemark simulate --data (bulk load into DuckDB through the pipeline)', () => {
  const dataDir = tempDir();
  const args = [
    'simulate',
    '--installs',
    '250',
    '--days',
    '30',
    '--seed',
    '11',
    '--end',
    '2026-11-01',
    '--data',
    dataDir,
  ];
  let first: Result;
  let firstStderr: string;

  beforeAll(async () => {
    const run = await runCli([...args, '--json']);
    expect(run.stderr).not.toMatch(/Error|TMK_ERR/);
    expect(run.code).toBe(0);
    first = JSON.parse(run.stdout) as Result;
    firstStderr = run.stderr;
  });

  it('stores every generated event, none rejected', async () => {
    expect(first.events).toBeGreaterThan(10_000);
    expect(first.accepted).toBe(first.events);
    expect(first.rejected).toBe(0);
    // Not a terminal: progress comes as plain lines, the last one complete.
    expect(firstStderr).toMatch(/simulate: day 30\/30 · [\d,]+ events delivered/);
    expect(firstStderr).not.toContain('\r');

    const store = await openDataDirStore(dataDir, { readOnly: true });
    try {
      const [count] = await store.query<{ n: unknown; installs: unknown }>(
        sql`SELECT count(*) AS n, count(DISTINCT install_id) AS installs FROM events`,
      );
      expect(num(count?.n)).toBe(first.events);
      expect(num(count?.installs)).toBe(first.installs);
      const [range] = await store.query<{ lo: unknown; hi: unknown }>(
        sql`SELECT min(ts) AS lo, max(ts) AS hi FROM events`,
      );
      const end = Date.parse('2026-11-01T00:00:00Z');
      // Skew-corrected times stay within a few seconds of the true period.
      expect(new Date(String(range?.lo)).getTime() || num(range?.lo)).toBeGreaterThan(
        end - 30 * 86_400_000 - 60_000,
      );
      const counters = await store.query<{ n: unknown }>(
        sql`SELECT sum(count) AS n FROM ingest_counters WHERE kind = 'accepted'`,
      );
      expect(num(counters[0]?.n)).toBe(first.events);
      const skewed = await store.query<{ n: unknown }>(
        sql`SELECT count(*) AS n FROM events WHERE skew_ms <> 0`,
      );
      expect(num(skewed[0]?.n)).toBeGreaterThan(0);
    } finally {
      await store.close();
    }
  });

  it('keeps the shape: OS mix, CI runners, the regressed release and its new error, scrubbed text', async () => {
    const store = await openDataDirStore(dataDir, { readOnly: true });
    try {
      const os = await store.query<{ platform: string; n: unknown }>(
        sql`SELECT platform, count(DISTINCT install_id) AS n FROM events GROUP BY platform ORDER BY n DESC`,
      );
      expect(os[0]?.platform).toBe('darwin');
      expect(os.map((r) => r.platform)).toEqual(expect.arrayContaining(['darwin', 'linux', 'win32']));
      const ci = await store.query<{ vendor: string }>(
        sql`SELECT DISTINCT ci_vendor AS vendor FROM events WHERE env_class = 'ci'`,
      );
      expect(ci.map((r) => r.vendor).sort()).toEqual(['github_actions', 'gitlab']);
      const regression = await store.query<{ version: string; fp: string }>(
        sql`SELECT DISTINCT app_version AS version, error_fingerprint AS fp FROM events
            WHERE event = 'intercept_fail' AND error_text LIKE ${`%${TELEPRESENCE_REGRESSION_MARKER}%`}`,
      );
      expect(regression.length).toBeGreaterThan(0);
      expect(new Set(regression.map((r) => r.version))).toEqual(new Set(['2.21.0']));
      const leaks = await store.query<{ text: string }>(
        sql`SELECT error_text AS text FROM events
            WHERE error_text LIKE '%/Users/alice%' OR error_text LIKE '%/home/bob%' OR error_text LIKE '%@acme.com%'
               OR regexp_matches(error_text, '\\b10\\.[0-9]+\\.[0-9]+\\.[0-9]+\\b') LIMIT 5`,
      );
      expect(leaks).toEqual([]);
      const [errors] = await store.query<{ n: unknown }>(
        sql`SELECT count(*) AS n FROM events WHERE error_text <> ''`,
      );
      expect(num(errors?.n)).toBeGreaterThan(100);
    } finally {
      await store.close();
    }
  });

  it('is deterministic: the same seed and end again produce the same messages, all duplicates', async () => {
    // The store dedupes messages received in the last 7 days: keep the period inside that window.
    const recentDir = tempDir();
    const end = new Date().toISOString().slice(0, 10);
    const recent = [
      'simulate',
      '--installs',
      '80',
      '--days',
      '5',
      '--seed',
      '13',
      '--end',
      end,
      '--data',
      recentDir,
      '--json',
    ];
    const once = JSON.parse((await runCli(recent)).stdout) as Result;
    expect(once.accepted).toBe(once.events);
    const again = await runCli(recent);
    expect(again.code).toBe(0);
    const result = JSON.parse(again.stdout) as Result;
    expect(result.events).toBe(once.events);
    expect(result.accepted).toBe(0);
    expect(result.duplicates).toBe(once.events);
  });

  it('reports every bad option at once', async () => {
    const run = await runCli(['simulate', '--installs', 'many', '--days', '0']);
    expect(run.code).toBe(1);
    expect(run.stderr).toContain('TMK_ERR_SIMULATE_OPTIONS');
    expect(run.stderr).toMatch(
      /--installs must be an integer.*exactly one target.*--days must be an integer from 1/s,
    );
  });
});

describe('telemark simulate --to (a real collector, through /v1/batch)', () => {
  let served: Served;

  beforeAll(async () => {
    const dataDir = tempDir();
    // A tight budget for keyless Telepresence traffic makes the collector answer 429 with Retry-After.
    const config = join(dataDir, 'config.json');
    writeFileSync(
      config,
      JSON.stringify({
        apps: { telepresence2: { rateLimits: { perWriteKey: { perSecond: 2000, burst: 1000 } } } },
      }),
    );
    served = await startServe(dataDir, ['--config', config]);
  });
  afterAll(async () => {
    await served?.stop();
  });

  it('delivers every event, retrying after 429s, and the API counts them', async () => {
    const run = await runCli([
      'simulate',
      '--installs',
      '120',
      '--days',
      '20',
      '--seed',
      '5',
      '--to',
      served.url,
      '--concurrency',
      '3',
      '--json',
    ]);
    expect(run.stderr).not.toContain('TMK_ERR');
    expect(run.code).toBe(0);
    const result = JSON.parse(run.stdout) as Result;
    expect(result.events).toBeGreaterThan(5000);
    expect(result.accepted).toBe(result.events);
    expect(result.rejected).toBe(0);

    const from = new Date(Date.now() - 25 * 86_400_000).toISOString().slice(0, 10);
    const overview = await api<{ events: number; installs: number }>(served, 'overview', {
      app: 'telepresence2',
      from,
      includeCi: '1',
    });
    expect(overview.events).toBe(result.events);
    expect(overview.installs).toBe(result.installs);
    const health = await api<{ rateLimited: number }>(served, 'health', {
      app: 'telepresence2',
      from,
      includeCi: '1',
    });
    expect(health.rateLimited).toBeGreaterThan(0);
  });
});
