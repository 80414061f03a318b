/**
 * `telemark query` as users run it: the built CLI (`packages/server/dist/cli/main.js`, build first with
 * `npx tsc -b packages/server`) against a data directory holding the hand-written dataset, in table, JSON
 * and CSV; then against a running `telemark serve` over `--url`, and the lock error that points there.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { catalogToJSON } from 'telemark';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { VIEW_NAMES } from '../../packages/server/src/analytics/index.js';
import { createDuckDBStore } from '../../packages/server/src/store/duckdb/index.js';
import { runCli } from '../collector/_helpers.js';
import { acmeCatalog, betaCatalog, FROM, TO, writeDataset } from './dataset.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const CLI = path.join(ROOT, 'packages/server/dist/cli/main.js');
const TOKEN = 'tmk_cli-test-token-0123456789';

let dir: string;
let data: string;
let config: string;

const telemark = (args: readonly string[], env: NodeJS.ProcessEnv = {}) =>
  runCli(args, { cwd: dir, env: { PATH: process.env.PATH, HOME: dir, ...env } });

const common = ['--app', 'acme', '--from', FROM, '--to', TO];
const local = () => ['--data', data, '--config', config];

beforeAll(async () => {
  if (!fs.existsSync(CLI))
    throw new Error(`build the server first: npx tsc -b packages/server (${CLI} is missing)`);
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'telemark-'));
  data = path.join(dir, 'data');
  fs.mkdirSync(data);
  const store = createDuckDBStore({
    path: path.join(data, 'telemark.duckdb'),
    now: () => Date.UTC(2026, 10, 16),
  });
  await writeDataset(store);
  await store.close();
  config = path.join(dir, 'config.json');
  fs.writeFileSync(
    config,
    JSON.stringify({
      apps: {
        acme: { catalog: catalogToJSON(acmeCatalog), writeKeys: ['key-acme-0001'] },
        beta: { catalog: catalogToJSON(betaCatalog), writeKeys: ['key-beta-0001'] },
      },
    }),
  );
});

afterAll(() => {
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

describe('telemark query --data', () => {
  it('json: every view, the API’s response shape with hand-computed figures', async () => {
    const runs = await Promise.all(
      VIEW_NAMES.map((view) => telemark(['query', view, ...common, ...local(), '--format', 'json'])),
    );
    const byView = Object.fromEntries(
      runs.map((run, i) => {
        expect(run.stderr, VIEW_NAMES[i]).toBe('');
        expect(run.code, VIEW_NAMES[i]).toBe(0);
        return [VIEW_NAMES[i], JSON.parse(run.stdout)];
      }),
    );
    for (const view of VIEW_NAMES) expect(byView[view].view).toBe(view);
    expect([byView.overview.events, byView.overview.installs, byView.overview.latestVersion]).toEqual([
      38,
      5,
      '2.10.0',
    ]);
    expect(byView.trends.series[0]).toMatchObject({ event: 'start', total: 7 });
    expect(byView.installs.daily).toEqual([1, 2, 1, 1, 0, 0, 1, 1, 3, 3, 2, 1, 1, 1]);
    expect(byView.outcomes.outcomes.map((o: { overallRate: number }) => o.overallRate)).toEqual([
      0.4, 0.8, 0.666667,
    ]);
    expect(byView.funnel.steps.map((s: { sessions: number }) => s.sessions)).toEqual([6, 4, 3]);
    expect(byView.errors.errors.map((e: { newInVersion: string | null }) => e.newInVersion)).toEqual([
      null,
      '2.10.0',
      null,
    ]);
    expect(byView.breakdown.rows).toEqual([
      { value: 'other', other: true, events: 38, installs: 5, share: 1 },
    ]);
    expect(byView.adoption.activeInstalls).toEqual([3, 4]);
    expect(byView.retention.cohorts.map((c: { retained: number[] }) => c.retained)).toEqual([[2, 1], [2]]);
    expect(byView.health.quarantine).toBe(2);
  });

  it('table: aligned columns and sparklines for series', async () => {
    const [trends, funnel, breakdown, health] = await Promise.all([
      telemark(['query', 'trends', ...common, ...local()]),
      telemark(['query', 'funnel', ...common, ...local()]),
      telemark(['query', 'breakdown', ...common, ...local(), '--dimension', 'os_name', '--k', '2']),
      telemark(['query', 'health', ...common, ...local()]),
    ]);
    for (const run of [trends, funnel, breakdown, health]) expect([run.code, run.stderr]).toEqual([0, '']);
    const lines = trends.stdout.trimEnd().split('\n');
    expect(lines[0]).toBe('acme · 2026-11-02T00:00:00.000Z → 2026-11-16T00:00:00.000Z · per day');
    expect(lines[2]).toMatch(/^event\s+events\s+peak installs\s+events per bucket$/);
    expect(lines[3]).toMatch(/^─+ {2}─+/);
    // start: 1 3 0 0 0 0 0 1 2 0 0 0 0 0 scaled to ▁…█
    expect(lines[4]).toBe('start                7              2  ▃█▁▁▁▁▁▃▆▁▁▁▁▁');
    // Every row has the same width up to the sparkline column.
    const starts = lines.slice(4).map((l) => l.search(/[▁▂▃▄▅▆▇█]/));
    expect(new Set(starts).size).toBe(1);
    expect(funnel.stdout).toContain('Connect (window 600 s)');
    expect(funnel.stdout).toMatch(/2\s+connect\s+4\s+66\.7%\s+66\.7%\s+2\s+25\s+37/);
    expect(breakdown.stdout).toMatch(/macOS\s+16\s+2\s+40\.0%/);
    expect(breakdown.stdout).toMatch(/other\s+7\s+1\s+20\.0%/);
    expect(health.stdout).toMatch(/ingest lag p90 s\s+2520\.6/);
    expect(health.stdout).toMatch(/accepted {2}▁█▅▁▃▁▁▁▄▁▁▁▁▁/);
  });

  it('csv: a header and one tidy row per figure', async () => {
    const [trends, errors, retention, outcomes] = await Promise.all([
      telemark(['query', 'trends', ...common, ...local(), '--format', 'csv']),
      telemark(['query', 'errors', ...common, ...local(), '--format', 'csv']),
      telemark(['query', 'retention', ...common, ...local(), '--format', 'csv']),
      telemark([
        'query',
        'outcomes',
        ...common,
        ...local(),
        '--format',
        'csv',
        '--outcome',
        'deploy',
        '--breakdown',
        'os_name',
        '--k',
        '2',
      ]),
    ]);
    for (const run of [trends, errors, retention, outcomes]) expect([run.code, run.stderr]).toEqual([0, '']);
    const trendRows = trends.stdout.trimEnd().split('\n');
    expect(trendRows[0]).toBe('bucket,event,events,installs');
    expect(trendRows).toContain('2026-11-03T00:00:00.000Z,start,3,2');
    expect(trendRows).toHaveLength(1 + 7 * 14);
    expect(errors.stdout.split('\n')[0]).toBe(
      'fingerprint,event,count,installs,firstVersion,lastVersion,firstSeen,lastSeen,newInVersion,sample',
    );
    expect(errors.stdout).toContain(
      'fp-new,deploy_fail,2,2,2.10.0,2.10.0,2026-11-10T10:00:00.000Z,2026-11-12T10:10:00.000Z,2.10.0,timeout after 31s',
    );
    expect(retention.stdout.trimEnd().split('\n')).toEqual([
      'cohort,installs,weeksAfter,retained,rate',
      '2026-11-02,2,0,2,1',
      '2026-11-02,2,1,1,0.5',
      '2026-11-09,2,0,2,1',
    ]);
    expect(outcomes.stdout.trimEnd().split('\n')).toEqual([
      'outcome,os_name,installs,total,success,failure,rate',
      'deploy,Ubuntu,2,4,1,3,0.25',
      'deploy,macOS,2,4,2,2,0.5',
      'deploy,other,1,2,1,1,0.5',
    ]);
  });

  it('breakdown by a catalog trait: --dimension trait:<name>, with --event', async () => {
    const byTrait = (trait: string, ...more: string[]) =>
      telemark([
        'query',
        'breakdown',
        ...common,
        ...local(),
        '--dimension',
        trait,
        '--event',
        'login',
        ...more,
      ]);
    const [table, csv, bad] = await Promise.all([
      byTrait('trait:method', '--k', '1'),
      byTrait('trait:result', '--k', '1', '--format', 'csv'),
      byTrait('trait:error'),
    ]);
    for (const run of [table, csv]) expect([run.code, run.stderr]).toEqual([0, '']);
    expect(table.stdout).toContain('by trait:method · 4 installs');
    expect(table.stdout).toMatch(/browser\s+4\s+4\s+100\.0%/);
    expect(table.stdout).toMatch(/token\s+1\s+1\s+25\.0%/);
    expect(csv.stdout.trimEnd().split('\n')).toEqual([
      expect.stringMatching(/^trait:result,/),
      expect.stringMatching(/^ok,/),
      expect.stringMatching(/^\(none\),/),
      expect.stringMatching(/^aborted,/),
      expect.stringMatching(/^denied,/),
    ]);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(
      /\[TMK_ERR_BAD_PARAMETER\] Bad parameter: dimension: "trait:error" is not an enum, boolean or enumList trait of login; allowed: trait:method, trait:result, trait:scopes/,
    );
  });

  it('error drill-down with --fingerprint', async () => {
    const run = await telemark(['query', 'errors', ...common, ...local(), '--fingerprint', 'fp-old']);
    expect(run.code).toBe(0);
    expect(run.stdout).toContain('fp-old · deploy_fail · 3 times on 2 installs');
    expect(run.stdout).toMatch(/2\.10\.0\s+1\n2\.9\.0\s+2/);
  });

  it('clear errors: unknown view, bad parameter, missing data', async () => {
    const [view, parameter, missing] = await Promise.all([
      telemark(['query', 'everything', ...common, ...local()]),
      telemark(['query', 'trends', ...common, ...local(), '--interval', 'fortnight', '--event', 'nope']),
      telemark(['query', 'overview', ...common, '--data', path.join(dir, 'nothing-here')]),
    ]);
    expect(view.code).toBe(1);
    expect(view.stderr).toMatch(/\[TMK_ERR_UNKNOWN_VIEW\] No view "everything"; views: overview, trends/);
    expect(parameter.code).toBe(1);
    expect(parameter.stderr).toMatch(
      /\[TMK_ERR_BAD_PARAMETER\] Bad parameter: interval: expected one of hour, day, week, month, got "fortnight"; event: "nope" is not an event/,
    );
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(/^telemark: \[TMK_ERR_/);
  });
});

describe('telemark query --url, against a running collector', () => {
  let server: ChildProcess | undefined;
  let url = '';

  beforeAll(async () => {
    server = spawn(process.execPath, [CLI, 'serve', '--port', '0', '--data', data, '--config', config], {
      cwd: dir,
      env: { PATH: process.env.PATH, HOME: dir, TELEMARK_ADMIN_TOKEN: TOKEN },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    url = await new Promise<string>((resolve, reject) => {
      let out = '';
      let err = '';
      server!.stdout!.on('data', (chunk: Buffer) => {
        out += chunk.toString();
        const match = /listening on (http:\/\/\S+)/.exec(out);
        if (match) resolve(match[1]!);
      });
      server!.stderr!.on('data', (chunk: Buffer) => {
        err += chunk.toString();
      });
      server!.on('exit', (code) => reject(new Error(`serve exited with ${code}: ${err}`)));
    });
  });

  afterAll(async () => {
    if (server && server.exitCode === null) {
      const exited = new Promise((resolve) => server!.once('exit', resolve));
      server.kill('SIGTERM');
      await exited;
    }
  });

  it('--data on a data directory the collector holds fails with TMK_ERR_STORE_LOCKED naming --url', async () => {
    const run = await telemark(['query', 'overview', ...common, ...local()]);
    expect(run.code).toBe(1);
    expect(run.stderr).toMatch(/\[TMK_ERR_STORE_LOCKED\].*query it with --url/);
  });

  it('--url gives the same answers as the data directory, in every format', async () => {
    const env = { TELEMARK_ADMIN_TOKEN: TOKEN };
    const [json, csv, table] = await Promise.all([
      telemark(['query', 'errors', ...common, '--url', url, '--format', 'json'], env),
      telemark(['query', 'installs', ...common, '--url', url, '--format', 'csv', '--interval', 'week'], env),
      telemark(['query', 'funnel', ...common, '--url', url, '--window', '1300'], env),
    ]);
    for (const run of [json, csv, table]) expect([run.code, run.stderr]).toEqual([0, '']);
    const errors = JSON.parse(json.stdout);
    expect(errors.errors.map((e: { fingerprint: string }) => e.fingerprint)).toEqual([
      'fp-old',
      'fp-new',
      'fp-back',
    ]);
    expect(csv.stdout.trimEnd().split('\n')).toEqual([
      'bucket,daily,weekly,monthly',
      '2026-11-02T00:00:00.000Z,1,3,4',
      '2026-11-09T00:00:00.000Z,1,4,6',
    ]);
    expect(table.stdout).toMatch(/3\s+ready\s+4\s+66\.7%\s+80\.0%\s+1\s+60\s+102/);
  });

  it('--url: breakdown by a catalog trait, the same answer as the data directory', async () => {
    const run = await telemark(
      [
        'query',
        'breakdown',
        ...common,
        '--url',
        url,
        '--dimension',
        'trait:found',
        '--k',
        '1',
        '--format',
        'json',
      ],
      { TELEMARK_ADMIN_TOKEN: TOKEN },
    );
    expect([run.code, run.stderr]).toEqual([0, '']);
    const body = JSON.parse(run.stdout);
    expect(body.dimension).toBe('trait:found');
    expect(
      body.rows.map((r: { value: string; events: number; installs: number }) => [
        r.value,
        r.events,
        r.installs,
      ]),
    ).toEqual([
      ['true', 4, 3],
      ['false', 1, 1],
    ]);
  });

  it('--url without the token, or with a wrong one, says how to fix it', async () => {
    const [none, wrong, bad] = await Promise.all([
      telemark(['query', 'overview', ...common, '--url', url]),
      telemark(['query', 'overview', ...common, '--url', url], { TELEMARK_ADMIN_TOKEN: 'wrong' }),
      telemark(['query', 'breakdown', ...common, '--url', url, '--dimension', 'install_id'], {
        TELEMARK_ADMIN_TOKEN: TOKEN,
      }),
    ]);
    expect(none.stderr).toMatch(/\[TMK_ERR_UNAUTHORIZED\].*TELEMARK_ADMIN_TOKEN/);
    expect(wrong.stderr).toMatch(/\[TMK_ERR_UNAUTHORIZED\]/);
    expect(bad.stderr).toMatch(/\[TMK_ERR_BAD_PARAMETER\] Bad parameter: dimension: expected one of os_name/);
    for (const run of [none, wrong, bad]) expect(run.code).toBe(1);
  });

  it('--url with a store of its own (--data, --config) is refused, naming both', async () => {
    const run = await telemark(
      ['query', 'overview', ...common, '--url', url, '--data', 'd', '--config', 'c.json'],
      {
        TELEMARK_ADMIN_TOKEN: TOKEN,
      },
    );
    expect(run.code).toBe(1);
    expect(run.stderr).toContain(
      '[TMK_ERR_BAD_PARAMETER] Bad parameter: --url and --data, --config: give one',
    );
  });

  it('an unreachable --url is reported as such', async () => {
    const run = await telemark(['query', 'overview', ...common, '--url', 'http://127.0.0.1:9'], {
      TELEMARK_ADMIN_TOKEN: TOKEN,
    });
    expect(run.code).toBe(1);
    expect(run.stderr).toMatch(
      /\[TMK_ERR_API_UNREACHABLE\] Cannot get an answer from the query API at http:\/\/127\.0\.0\.1:9/,
    );
  });
});
