import { type ChildProcess, type SpawnOptions, spawn } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { baseConfig, bearer, CLI, ourMessage, postJson, ROOT, resultStatuses, tempDir } from './_helpers.js';

const running = new Set<ChildProcess>();
// A command that spins is killed here; the test's timeout is what reports it.
afterAll(() => {
  for (const child of running) child.kill('SIGKILL');
});

interface Run {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** `node args…` to its end; not spawnSync, which would block the test's timeout. */
function run(args: readonly string[], options: SpawnOptions = {}): Promise<Run> {
  const { TELEMARK_ADMIN_TOKEN: _ignored, ...env } = process.env;
  const child = spawn(process.execPath, args, { env, ...options, stdio: ['ignore', 'pipe', 'pipe'] });
  running.add(child);
  let stdout = '';
  let stderr = '';
  child.stdout?.on('data', (d: Buffer) => {
    stdout += d.toString();
  });
  child.stderr?.on('data', (d: Buffer) => {
    stderr += d.toString();
  });
  return new Promise((resolve) =>
    child.on('close', (code) => {
      running.delete(child);
      resolve({ code, stdout, stderr });
    }),
  );
}

const telemark = (args: readonly string[], options: SpawnOptions = {}) => run([CLI, ...args], options);

const hasProc = existsSync('/proc/self');

/** A refusal as the CLI prints it: the code, the directory, and the fix, on stderr only. */
function expectDataDirRefusal(result: Run, dir: string): void {
  expect({ code: result.code, stdout: result.stdout }).toEqual({ code: 1, stdout: '' });
  expect(result.stderr).toMatch(
    new RegExp(`^telemark: \\[TMK_ERR_DATA_DIR\\] Cannot use the data directory: ${dir} \\(.+\\)\\. `),
  );
  expect(result.stderr).toContain('Check the --data path and its permissions.');
}

describe('a data directory that cannot be made or written', () => {
  // Node's recursive mkdir stepped between /proc/x (ENOENT) and /proc (exists) for ever.
  it.skipIf(!hasProc)(
    'serve and simulate refuse /proc/x at once: TMK_ERR_DATA_DIR, not a spin',
    async () => {
      const [serve, simulate] = await Promise.all([
        telemark(['serve', '--port', '0', '--data', '/proc/telemark-x']),
        telemark(['simulate', '--installs', '2', '--days', '1', '--data', '/proc/telemark-x/data']),
      ]);
      expectDataDirRefusal(serve, '/proc/telemark-x');
      expectDataDirRefusal(simulate, '/proc/telemark-x/data');
    },
    20_000,
  );

  it.skipIf(!hasProc)(
    'the DuckDB store itself fails to open there, rather than spinning (library use)',
    async () => {
      const script = `
        import { openStore, resolveServeConfig } from ${JSON.stringify(join(ROOT, 'packages/server/dist/index.js'))};
        const store = openStore(resolveServeConfig({ data: '/proc/telemark-x' }));
        await store.init().then(() => console.log('opened'), (error) => console.log(error.code, error.cause?.code));
        await store.close();
      `;
      const result = await run(['--input-type=module', '-e', script]);
      expect(result).toEqual({ code: 0, stdout: 'TMK_ERR_STORE_INIT ENOENT\n', stderr: '' });
    },
    20_000,
  );

  it.skipIf(!hasProc)(
    'resolveAdminToken throws the system error there, rather than spinning (library use)',
    async () => {
      const script = `
        import { resolveAdminToken } from ${JSON.stringify(join(ROOT, 'packages/server/dist/index.js'))};
        try { resolveAdminToken('/proc/telemark-x'); console.log('made'); } catch (error) { console.log(error.code); }
      `;
      const { TELEMARK_ADMIN_TOKEN: _ignored, ...env } = process.env;
      const result = await run(['--input-type=module', '-e', script], { env });
      expect(result).toEqual({ code: 0, stdout: 'ENOENT\n', stderr: '' });
    },
    20_000,
  );

  it('serve refuses a path under a regular file: TMK_ERR_DATA_DIR', async () => {
    const file = join(tempDir(), 'a-file');
    writeFileSync(file, '');
    expectDataDirRefusal(
      await telemark(['serve', '--port', '0', '--data', join(file, 'data')]),
      join(file, 'data'),
    );
  });

  it('serve refuses a directory it cannot write: TMK_ERR_DATA_DIR, not a store error', async () => {
    const parent = tempDir();
    chmodSync(parent, 0o755);
    const readOnly = join(parent, 'read-only');
    mkdirSync(readOnly, { mode: 0o555 });
    // Root writes anywhere: run as nobody then.
    const asUser = process.getuid?.() === 0 ? { uid: 65534, gid: 65534, cwd: '/' } : {};
    expectDataDirRefusal(await telemark(['serve', '--port', '0', '--data', readOnly], asUser), readOnly);
  });

  it.skipIf(!hasProc)(
    'admin commands refuse /proc/x as a directory without data (TMK_ERR_STORE_NO_DATA), creating nothing',
    async () => {
      const dir = '/proc/telemark-x';
      const commands = [
        ['query', 'overview', '--app', 'telepresence2'],
        ['export', '--format', 'csv', '--out', join(tempDir(), 'out.csv')],
        ['delete', '--app', 'telepresence2', '--install-id', 'i-1'],
        ['quarantine', 'list'],
        ['quarantine', 'replay'],
      ];
      const results = await Promise.all(commands.map((args) => telemark([...args, '--data', dir])));
      for (const result of results) {
        expect(result.code).toBe(1);
        expect(result.stderr).toContain(`[TMK_ERR_STORE_NO_DATA] No Telemark data at ${dir}/telemark.duckdb`);
      }
    },
    20_000,
  );
});

/** `telemark serve --config file` run from `cwd` until it listens; then `use` its URL, and stop it. */
async function whileServing(file: string, cwd: string, use: (url: string) => Promise<void>): Promise<void> {
  const child = spawn(process.execPath, [CLI, 'serve', '--config', file], {
    cwd,
    env: { ...process.env, TELEMARK_ADMIN_TOKEN: 'test-admin-token' },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  running.add(child);
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  let out = '';
  const url = await new Promise<string>((resolve, reject) => {
    child.stdout?.on('data', (d: Buffer) => {
      out += d.toString();
      const match = /listening on (http:\/\/\S+)/.exec(out);
      if (match?.[1]) resolve(match[1]);
    });
    exited.then(() => reject(new Error(out)));
  });
  await use(url);
  child.kill('SIGTERM');
  expect(await exited).toBe(0);
  running.delete(child);
}

describe("admin commands given serve's --config without --data", () => {
  it('query and quarantine list read the data directory serve uses with that file, not ./telemark-data', async () => {
    const configDir = tempDir();
    // Run from elsewhere: the working directory must not matter.
    const cwd = tempDir();
    const withData = join(configDir, 'with-data.json');
    // Relative to the file.
    writeFileSync(withData, JSON.stringify(baseConfig('./store')));
    const withoutData = join(configDir, 'without-data.json');
    const { data: _data, ...noData } = baseConfig('');
    writeFileSync(withoutData, JSON.stringify(noData));
    // A different number of events in each, to tell their stores apart.
    const files = [
      { file: withData, events: 1 },
      { file: withoutData, events: 2 },
    ];
    for (const { file, events } of files)
      await whileServing(file, cwd, async (url) => {
        const batch = Array.from({ length: events }, (_, i) => ourMessage(`config-${events}-${i}`));
        expect(resultStatuses((await postJson(`${url}/v1/batch`, { batch }, bearer())).json)).toEqual(
          batch.map(() => 'accepted'),
        );
      });
    expect(existsSync(join(configDir, 'store'))).toBe(true);
    expect(existsSync(join(configDir, 'telemark-data'))).toBe(true);

    for (const { file, events } of files) {
      const query = await telemark(
        ['query', 'overview', '--app', 'mytool', '--config', file, '--format', 'json'],
        {
          cwd,
        },
      );
      expect({ code: query.code, stderr: query.stderr }).toEqual({ code: 0, stderr: '' });
      expect(JSON.parse(query.stdout).events).toBe(events);
      const list = await telemark(['quarantine', 'list', '--config', file, '--json'], { cwd });
      expect({ code: list.code, stdout: list.stdout, stderr: list.stderr }).toEqual({
        code: 0,
        stdout: '[]\n',
        stderr: '',
      });
    }
  });
});

describe("delete and export given serve's --config", () => {
  it('find the data directory serve uses with that file, from any working directory', async () => {
    const configDir = tempDir();
    const cwd = tempDir();
    const file = join(configDir, 'telemark.json');
    writeFileSync(file, JSON.stringify(baseConfig('./store')));
    await whileServing(file, cwd, async (url) => {
      const batch = [ourMessage('config-export-1'), ourMessage('config-export-2')];
      expect(resultStatuses((await postJson(`${url}/v1/batch`, { batch }, bearer())).json)).toEqual([
        'accepted',
        'accepted',
      ]);
    });
    const exported = await telemark(['export', '--format', 'ndjson', '--out', '-', '--config', file], {
      cwd,
    });
    expect({ code: exported.code, stderr: exported.stderr }).toEqual({
      code: 0,
      stderr: 'Exported 2 events to stdout.\n',
    });
    const erased = await telemark(
      ['delete', '--app', 'mytool', '--install-id', 'install-1', '--config', file, '--json'],
      { cwd },
    );
    expect({ code: erased.code, stdout: erased.stdout, stderr: erased.stderr }).toEqual({
      code: 0,
      stdout: `${JSON.stringify({ app: 'mytool', installId: 'install-1', events: 2, quarantine: 0 })}\n`,
      stderr: '',
    });
    // --data still wins over the file's, relative to the working directory.
    const elsewhere = await telemark(
      ['export', '--format', 'csv', '--out', '-', '--config', file, '--data', 'nothing-here'],
      { cwd },
    );
    expect(elsewhere.code).toBe(1);
    expect(elsewhere.stderr).toContain(
      `[TMK_ERR_STORE_NO_DATA] No Telemark data at ${join(cwd, 'nothing-here')}`,
    );
  });

  it('refuse --config with --url, and a ClickHouse config, naming what to do instead', async () => {
    const file = join(tempDir(), 'clickhouse.json');
    writeFileSync(file, JSON.stringify({ store: 'clickhouse', clickhouse: { url: 'http://127.0.0.1:9' } }));
    const [withUrl, erase, exported] = await Promise.all([
      telemark([
        'delete',
        '--app',
        'a',
        '--install-id',
        'i',
        '--url',
        'http://127.0.0.1:9',
        '--config',
        file,
      ]),
      telemark(['delete', '--app', 'a', '--install-id', 'i', '--config', file]),
      telemark(['export', '--format', 'csv', '--out', join(tempDir(), 'x.csv'), '--config', file]),
    ]);
    expect({ code: withUrl.code, stderr: withUrl.stderr }).toEqual({
      code: 1,
      stderr:
        'telemark: [TMK_ERR_BAD_PARAMETER] Bad parameter: --url and --config: give one (a running collector, or a store to open here).\n',
    });
    expect({ code: erase.code, stderr: erase.stderr }).toEqual({
      code: 1,
      stderr: `telemark: [TMK_ERR_BAD_PARAMETER] Bad parameter: --config ${file}: its store is ClickHouse, not a data directory opened here; erase through the running collector with --url.\n`,
    });
    expect(exported.code).toBe(1);
    expect(exported.stderr).toContain(`--config ${file}: its store is ClickHouse`);
  });
});
