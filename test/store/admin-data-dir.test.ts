/**
 * Offline admin commands (`delete`, `quarantine list|replay`) and the data directory they are given, as
 * real CLI processes: a directory without Telemark data is refused and never created (a mistyped --data
 * used to become a new, empty store that "deleted 0"), a listing is read-only (a directory a crash left
 * is refused, not loaded), and an erasure for an app the store has nothing of says so.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sampleEvent, sampleQuarantine } from '../../packages/server/dist/store/conformance.js';
import { createDuckDBStore, duckdbPathFor } from '../../packages/server/dist/store/index.js';
import { runCli } from '../collector/_helpers.js';

const _main = fileURLToPath(new URL('../../packages/server/dist/cli/main.js', import.meta.url));
const crashWriter = fileURLToPath(new URL('./fixtures/crash-writer.mjs', import.meta.url));
const root = fs.mkdtempSync(path.join(os.tmpdir(), 'telemark-admin-dir-'));
afterAll(() => fs.rmSync(root, { recursive: true, force: true }));

const telemark = (cwd: string, ...args: string[]) =>
  runCli(args, { cwd, env: { ...process.env, HOME: root } });

/** A config file registering no app of its own (the built-in ones only), next to nothing else. */
function emptyConfig(): string {
  const file = path.join(fs.mkdtempSync(path.join(root, 'config-')), 'config.json');
  fs.writeFileSync(file, '{}');
  return file;
}

const dataDir = path.join(root, 'data');

beforeAll(async () => {
  const store = createDuckDBStore({ path: duckdbPathFor(dataDir) });
  await store.write({
    events: [sampleEvent({ app: 'tp', messageId: 'a1', installId: 'alice' })],
    quarantine: [
      sampleQuarantine({ app: 'tp', raw: JSON.stringify({ anonymousId: 'alice', event: 'nope' }) }),
    ],
    counters: [],
  });
  await store.close();
});

describe('offline admin commands at a data directory without Telemark data', () => {
  it('refuse it with TMK_ERR_STORE_NO_DATA and create nothing there', async () => {
    const nowhere = path.join(root, 'nothere');
    const runs = {
      delete: await telemark(root, 'delete', '--app', 'tp', '--install-id', 'x', '--data', nowhere),
      list: await telemark(root, 'quarantine', 'list', '--data', nowhere),
      replay: await telemark(root, 'quarantine', 'replay', '--data', nowhere, '--config', emptyConfig()),
    };
    for (const [command, run] of Object.entries(runs)) {
      expect(run.code, command).toBe(1);
      expect(run.stdout, command).toBe('');
      expect(run.stderr, command).toMatch(
        /\[TMK_ERR_STORE_NO_DATA\] No Telemark data at .*nothere.*check --data/,
      );
    }
    expect(fs.existsSync(nowhere)).toBe(false);
  });

  it('refuse the default ./telemark-data of a directory that has none', async () => {
    const empty = fs.mkdtempSync(path.join(root, 'cwd-'));
    const run = await telemark(empty, 'delete', '--app', 'tp', '--install-id', 'x');
    expect(run.code).toBe(1);
    expect(run.stderr).toContain('[TMK_ERR_STORE_NO_DATA]');
    expect(run.stderr).toContain(path.join('telemark-data', 'telemark.duckdb'));
    expect(fs.readdirSync(empty)).toEqual([]);
  });
});

describe('quarantine list on a data directory left by a crash (kill -9)', () => {
  it('is refused read-only, like export, leaving the intake log for the next serve to load', async () => {
    const crashed = path.join(root, 'crashed');
    const file = duckdbPathFor(crashed);
    fs.mkdirSync(crashed);
    // Acknowledged writes kept in the intake log (no loads), then SIGKILL: what a kill -9 leaves.
    await new Promise<void>((resolve, reject) => {
      const child = spawn(process.execPath, [crashWriter, file, '1', '0', '1000', '10'], {
        stdio: ['ignore', 'pipe', 'inherit'],
        env: { ...process.env, CRASH_WRITER_NO_LOADS: '1' },
      });
      child.stdout.on('data', (chunk: Buffer) => {
        if (chunk.toString().includes('ack ')) child.kill('SIGKILL');
      });
      child.on('exit', (_code, signal) =>
        signal === 'SIGKILL' ? resolve() : reject(new Error('the writer was not killed')),
      );
    });
    const segments = () =>
      fs.readdirSync(`${file}.intake`).filter((n) => fs.statSync(path.join(`${file}.intake`, n)).size > 0);
    const pending = segments();
    expect(pending.length).toBeGreaterThan(0);

    const listed = await telemark(root, 'quarantine', 'list', '--data', crashed);
    expect(listed.code).toBe(1);
    expect(listed.stderr).toContain('[TMK_ERR_STORE_INTAKE_PENDING]');
    expect(listed.stderr).toContain('start `telemark serve` on this data directory once');
    expect(segments()).toEqual(pending);
  });
});

describe('telemark delete offline, for an app the store has nothing of', () => {
  it('warns on stderr that the app name may be wrong, and still exits 0', async () => {
    const typo = await telemark(root, 'delete', '--app', 'tpp', '--install-id', 'alice', '--data', dataDir);
    expect(typo.code).toBe(0);
    expect(typo.stdout).toBe(
      `Deleted 0 events and 0 quarantine entries of install alice (app tpp) from ${dataDir}.\n`,
    );
    expect(typo.stderr).toBe(
      `telemark: warning: no data for app "tpp" in ${dataDir} (no events, no quarantine entries): check --app\n`,
    );
    // An app the store holds data of: no warning, even for an install with nothing left.
    const known = await telemark(root, 'delete', '--app', 'tp', '--install-id', 'nobody', '--data', dataDir);
    expect(known).toMatchObject({ code: 0, stderr: '' });
  });
});
