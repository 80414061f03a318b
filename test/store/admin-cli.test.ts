/**
 * `telemark delete` and `telemark export`, run as real CLI processes against a real data directory.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { DuckDBInstance } from '@duckdb/node-api';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseCsv, sampleEvent, sampleQuarantine } from '../../packages/server/dist/store/conformance.js';
import {
  createDuckDBStore,
  duckdbPathFor,
  openDataDirStore,
  sql,
} from '../../packages/server/dist/store/index.js';
import { runCli } from '../collector/_helpers.js';

const _main = fileURLToPath(new URL('../../packages/server/dist/cli/main.js', import.meta.url));
const holder = fileURLToPath(new URL('./fixtures/hold-store.mjs', import.meta.url));
const root = fs.mkdtempSync(path.join(os.tmpdir(), 'telemark-admin-'));
afterAll(() => fs.rmSync(root, { recursive: true, force: true }));

const telemark = (...args: string[]) => runCli(args, { cwd: root, env: { ...process.env, HOME: root } });

const T0 = Date.UTC(2026, 3, 1);
const dataDir = path.join(root, 'data');
const events = [
  sampleEvent({ app: 'tp', messageId: 'a1', installId: 'alice', timestamp: T0 }),
  sampleEvent({
    app: 'tp',
    messageId: 'a2',
    installId: 'alice',
    timestamp: T0 + 86_400_000,
    errorText: 'line 1\nline "2", done',
  }),
  sampleEvent({ app: 'tp', messageId: 'b1', installId: 'bob', timestamp: T0 + 2 * 86_400_000 }),
  sampleEvent({ app: 'other', messageId: 'o1', installId: 'alice', timestamp: T0 }),
];

async function counts(): Promise<Record<string, number>> {
  const store = await openDataDirStore(dataDir, { readOnly: true });
  try {
    const rows = await store.query<{ key: string; n: number }>(
      sql`SELECT app || '/' || install_id AS key, count(*) AS n FROM events GROUP BY 1 ORDER BY 1`,
    );
    return Object.fromEntries(rows.map((r) => [r.key, r.n]));
  } finally {
    await store.close();
  }
}

beforeAll(async () => {
  const store = createDuckDBStore({ path: duckdbPathFor(dataDir) });
  await store.write({
    events,
    quarantine: [
      sampleQuarantine({ app: 'tp', raw: JSON.stringify({ anonymousId: 'alice', event: 'nope' }) }),
      sampleQuarantine({ app: 'tp', raw: JSON.stringify({ anonymousId: 'bob', event: 'nope' }) }),
    ],
    counters: [],
  });
  await store.close();
});

describe('telemark export', () => {
  it('writes NDJSON of one app, with every column, and says how many', async () => {
    const out = path.join(root, 'tp.ndjson');
    const run = await telemark(
      'export',
      '--format',
      'ndjson',
      '--out',
      out,
      '--app',
      'tp',
      '--data',
      dataDir,
    );
    expect(run).toMatchObject({ code: 0, stderr: '' });
    expect(run.stdout).toBe(`Exported 3 events to ${out}.\n`);
    const rows = fs
      .readFileSync(out, 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    expect(rows.map((r) => r.message_id)).toEqual(['a1', 'a2', 'b1']);
    expect(rows[1]).toMatchObject({
      install_id: 'alice',
      error_text: 'line 1\nline "2", done',
      ts: new Date(T0 + 86_400_000).toISOString(),
    });
    expect(Object.keys(rows[0]!)).toHaveLength(32);
  });

  it('writes CSV and Parquet, filtered by event time (--from inclusive, --to exclusive)', async () => {
    const csv = path.join(root, 'window.csv');
    const window = [
      '--from',
      new Date(T0 + 86_400_000).toISOString().slice(0, 10),
      '--to',
      String(T0 + 2 * 86_400_000),
    ];
    const run = await telemark('export', '--format', 'csv', '--out', csv, '--data', dataDir, ...window);
    expect(run).toMatchObject({ code: 0, stdout: `Exported 1 event to ${csv}.\n` });
    const [header, ...rows] = parseCsv(fs.readFileSync(csv, 'utf8'));
    expect(rows).toHaveLength(1);
    expect(rows[0]![header!.indexOf('error_text')]).toBe('line 1\nline "2", done');

    const parquet = path.join(root, 'all.parquet');
    expect((await telemark('export', '--format', 'parquet', '--out', parquet, '--data', dataDir)).code).toBe(
      0,
    );
    const db = await DuckDBInstance.create(':memory:');
    const connection = await db.connect();
    const read = await connection.runAndReadAll(
      'SELECT message_id FROM read_parquet($1) ORDER BY message_id',
      [parquet],
    );
    expect(read.getRows().flat()).toEqual(['a1', 'a2', 'b1', 'o1']);
    connection.closeSync();
    db.closeSync();
  });

  it('reports bad flags and a missing data directory with a code and the fix, writing nothing', async () => {
    const out = path.join(root, 'never.xml');
    const bad = await telemark(
      'export',
      '--format',
      'xml',
      '--out',
      out,
      '--from',
      'soon',
      '--data',
      dataDir,
    );
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/\[TMK_ERR_BAD_PARAMETER\].*--format "xml".*--from "soon"/);
    const missing = await telemark(
      'export',
      '--format',
      'csv',
      '--out',
      out,
      '--data',
      path.join(root, 'nowhere'),
    );
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(/\[TMK_ERR_STORE_NO_DATA\].*check --data/);
    expect(fs.existsSync(out)).toBe(false);
    expect(fs.existsSync(path.join(root, 'nowhere'))).toBe(false);
  });
});

/** Run the hold-store fixture on the data directory until `fn` returns. */
async function whileHeld(args: readonly string[], fn: (pid: number) => Promise<void>): Promise<void> {
  const child = spawn(process.execPath, [holder, dataDir, ...args], { stdio: ['ignore', 'pipe', 'inherit'] });
  try {
    await new Promise<void>((resolve, reject) => {
      child.stdout.on('data', (chunk: Buffer) => {
        if (chunk.toString().includes('ready')) resolve();
      });
      child.on('exit', (code) => reject(new Error(`holder exited with ${code}`)));
    });
    await fn(child.pid as number);
  } finally {
    const exited = new Promise((resolve) => child.on('exit', resolve));
    child.kill('SIGTERM');
    await exited;
  }
}

describe('telemark delete and export while another process holds the data directory', () => {
  it('fail with TMK_ERR_STORE_LOCKED naming the fix, and change nothing', async () => {
    // The holder is not the telemark CLI, so nothing says it is a collector: both fixes are named.
    await whileHeld([], async (pid) => {
      const out = path.join(root, 'locked.ndjson');
      const exported = await telemark('export', '--format', 'ndjson', '--out', out, '--data', dataDir);
      expect(exported.code).toBe(1);
      expect(exported.stderr).toMatch(
        new RegExp(
          `\\[TMK_ERR_STORE_LOCKED\\].*in use \\(.*PID ${pid}\\), by a running collector or an admin command.*if it is a collector, stop it first`,
        ),
      );
      // export has no --url of its own: the way to a running collector's answers is telemark query.
      expect(exported.stderr).toContain('`telemark query <view> --url`');
      expect(exported.stderr).toContain('if a command, run this again once it has finished');
      expect(fs.existsSync(out)).toBe(false);
      const deleted = await telemark('delete', '--app', 'tp', '--install-id', 'alice', '--data', dataDir);
      expect(deleted.code).toBe(1);
      expect(deleted.stderr).toMatch(/\[TMK_ERR_STORE_LOCKED\].*run the command with --url.*stop it first/);
    });
    expect(await counts()).toEqual({ 'other/alice': 1, 'tp/alice': 2, 'tp/bob': 1 });
  });

  it('do not call a read-only holder (an export, a query --data) a running collector', async () => {
    // Until 2026-11-29 a delete meeting an export's read lock said "in use by a running collector".
    await whileHeld(['--read-only'], async () => {
      const deleted = await telemark('delete', '--app', 'tp', '--install-id', 'alice', '--data', dataDir);
      expect(deleted.code).toBe(1);
      expect(deleted.stderr).toContain('[TMK_ERR_STORE_LOCKED]');
      expect(deleted.stderr).not.toContain('in use by a running collector');
      expect(deleted.stderr).toContain('an admin command such as telemark export');
    });
    expect(await counts()).toEqual({ 'other/alice': 1, 'tp/alice': 2, 'tp/bob': 1 });
  });
});

describe('telemark delete', () => {
  it('erases one install of one app, events and quarantine, and prints the counts', async () => {
    const run = await telemark('delete', '--app', 'tp', '--install-id', 'alice', '--data', dataDir);
    expect(run).toMatchObject({ code: 0, stderr: '' });
    expect(run.stdout).toBe(
      `Deleted 2 events and 1 quarantine entry of install alice (app tp) from ${dataDir}.\n`,
    );
    expect(await counts()).toEqual({ 'other/alice': 1, 'tp/bob': 1 });
    const store = await openDataDirStore(dataDir, { readOnly: true });
    try {
      const quarantine = await store.listQuarantine({ app: 'tp' });
      expect(quarantine.map((q) => JSON.parse(q.raw).anonymousId)).toEqual(['bob']);
    } finally {
      await store.close();
    }
    const again = await telemark(
      'delete',
      '--app',
      'tp',
      '--install-id',
      'alice',
      '--data',
      dataDir,
      '--json',
    );
    expect(JSON.parse(again.stdout)).toEqual({ app: 'tp', installId: 'alice', events: 0, quarantine: 0 });
  });

  it('quotes an install id a terminal would not show as itself, so the report stays one line', async () => {
    const run = await telemark('delete', '--app', 'tp', '--install-id', 'a\nb\u001b[2J', '--data', dataDir);
    expect(run).toMatchObject({ code: 0, stderr: '' });
    expect(run.stdout).toBe(
      `Deleted 0 events and 0 quarantine entries of install "a\\nb\\u001b[2J" (app tp) from ${dataDir}.\n`,
    );
  });

  it('requires --app and --install-id', async () => {
    const run = await telemark('delete', '--install-id', 'alice', '--data', dataDir);
    expect(run.code).not.toBe(0);
    expect(run.stderr).toMatch(/--app/);
  });
});
