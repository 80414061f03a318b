import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { bearer, CLI, ourMessage, postJson, runCli, startInProcess, tempDir } from './_helpers.js';

const telemark = (cwd: string, ...args: string[]) => runCli(args, { cwd });

/**
 * Text a client chose, which a spreadsheet would run as a formula if a CSV cell started with it. (No URL
 * in it: an install id the scrubber would change, a host name included, is stored as its pseudonym.)
 */
const FORMULAS = ['=HYPERLINK(A1&"x","x")', '+1+2', '-2+3', '@SUM(A1)'];

let dataDir: string;
beforeAll(async () => {
  const c = await startInProcess();
  try {
    const batch = FORMULAS.map((text, i) =>
      ourMessage(`f-${i}`, {
        anonymousId: text,
        context: { ...ourMessage('x').context, app: { name: 'mytool', version: text } },
      }),
    );
    batch.push(ourMessage('plain', { anonymousId: 'install "plain", 1' }));
    expect((await postJson(`${c.url}/v1/batch`, { batch }, bearer())).status).toBe(200);
  } finally {
    await c.stop();
  }
  dataDir = c.dataDir;
});

describe('telemark export --format csv', () => {
  it('neutralizes text cells a spreadsheet would run as formulas; NDJSON keeps them as sent', async () => {
    const out = join(tempDir(), 'events.csv');
    const run = await telemark(dataDir, 'export', '--data', dataDir, '--format', 'csv', '--out', out);
    expect(run).toMatchObject({ code: 0, stdout: `Exported 5 events to ${out}.\n` });
    const csv = fs.readFileSync(out, 'utf8');
    const cell = (text: string) => (text.includes('"') ? `"${text.replaceAll('"', '""')}"` : text);
    for (const text of FORMULAS) {
      // install_id and app_version both came from the client.
      expect(csv.split(`,${cell(`'${text}`)},`).length - 1, text).toBe(2);
      expect(csv, text).not.toContain(`,${cell(text)}`);
    }
    expect(csv).toContain(',"install ""plain"", 1",');

    const ndjson = join(tempDir(), 'events.ndjson');
    expect(
      (await telemark(dataDir, 'export', '--data', dataDir, '--format', 'ndjson', '--out', ndjson)).code,
    ).toBe(0);
    const ids = fs
      .readFileSync(ndjson, 'utf8')
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line).install_id as string);
    expect(ids.sort()).toEqual([...FORMULAS, 'install "plain", 1'].sort());
  });
});

describe('telemark export --out -', () => {
  it('writes the export to stdout and the summary to stderr, and creates no file named "-"', async () => {
    const cwd = tempDir();
    const run = await telemark(cwd, 'export', '--data', dataDir, '--format', 'ndjson', '--out', '-');
    expect(run.code).toBe(0);
    expect(fs.existsSync(join(cwd, '-'))).toBe(false);
    expect(run.stdout.trim().split('\n')).toHaveLength(5);
    expect(JSON.parse(run.stdout.split('\n')[0]!)).toMatchObject({ app: 'mytool', event: 'run' });
    expect(run.stderr).toBe('Exported 5 events to stdout.\n');
    expect(fs.readdirSync(cwd)).toEqual([]);
  });
});

describe('telemark export --from/--to', () => {
  it('reads a time without an offset as UTC, whatever the machine’s zone, and refuses dates that do not exist', async () => {
    const day = new Date(Date.now() - 86_400_000).toISOString().slice(0, 10);
    const midnight = Date.parse(`${day}T00:00:00.000Z`);
    const c = await startInProcess();
    try {
      const at = (id: string, ms: number) => ourMessage(id, { timestamp: new Date(ms).toISOString() });
      const batch = [at('before', midnight - 1), at('midnight', midnight), at('hour', midnight + 3_600_000)];
      expect((await postJson(`${c.url}/v1/batch`, { batch }, bearer())).status).toBe(200);
    } finally {
      await c.stop();
    }
    // New York is 5 hours behind UTC in winter, 4 in summer: either way `T00:00` read locally misses midnight.
    const env = { ...process.env, TZ: 'America/New_York' };
    const ids = async (...bounds: string[]) => {
      const run = await runCli(
        ['export', '--data', c.dataDir, '--format', 'ndjson', '--out', '-', ...bounds],
        {
          env,
        },
      );
      expect(run.code, run.stderr).toBe(0);
      return run.stdout
        .trim()
        .split('\n')
        .filter(Boolean)
        .map((line) => JSON.parse(line).message_id as string);
    };
    expect(await ids('--from', `${day}T00:00:00`, '--to', `${day}T01:00`)).toEqual(['midnight']);
    expect(await ids('--from', day, '--to', `${day} 01:00:00.000`)).toEqual(['midnight']);
    expect(await ids('--from', `${day}T05:00:00+05:00`, '--to', `${day}T01:00:00.0001Z`)).toEqual([
      'midnight',
      'hour',
    ]);
    expect(await ids('--to', `${day}T00:00:00.000`)).toEqual(['before']);

    const refused = await runCli(
      ['export', '--data', c.dataDir, '--format', 'ndjson', '--out', '-', '--from', '2026-02-31'],
      { env },
    );
    expect(refused).toMatchObject({ code: 1, stdout: '' });
    expect(refused.stderr).toContain('[TMK_ERR_BAD_PARAMETER]');
    expect(refused.stderr).toContain('--from "2026-02-31"');
  });
});

describe('telemark export --out - into a reader that went away', () => {
  it('exits as cat would (141), with no error and no summary, and leaves no scratch file', async () => {
    const tmp = tempDir();
    const child = spawn(
      process.execPath,
      [CLI, 'export', '--data', dataDir, '--format', 'ndjson', '--out', '-'],
      { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, TMPDIR: tmp } },
    );
    // The reader closes before the first byte: every write fails with EPIPE.
    child.stdout.destroy();
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => {
      stderr += d.toString();
    });
    const code = await new Promise<number | null>((resolve) => child.on('close', (c) => resolve(c)));
    expect(stderr).toBe('');
    expect(code).toBe(141);
    expect(fs.readdirSync(tmp)).toEqual([]);
  });
});

describe('telemark export --out inside the data directory', () => {
  it('is refused before anything is written: the database, its key and its intake stay intact', async () => {
    const copy = tempDir();
    fs.cpSync(dataDir, copy, { recursive: true });
    const files = fs.readdirSync(copy).sort();
    const database = join(copy, 'telemark.duckdb');
    const before = fs.readFileSync(database);
    for (const out of [
      database,
      join(copy, 'install-id-key'),
      join(copy, '..x'),
      join(copy, 'new', 'x.csv'),
    ]) {
      const run = await telemark(copy, 'export', '--data', copy, '--format', 'csv', '--out', out);
      expect(run.code, out).toBe(1);
      expect(run.stderr).toContain('[TMK_ERR_BAD_PARAMETER]');
      expect(run.stderr).toContain('inside the data directory');
    }
    expect(fs.readdirSync(copy).sort()).toEqual(files);
    expect(fs.readFileSync(database).equals(before)).toBe(true);
    const again = await telemark(copy, 'export', '--data', copy, '--format', 'ndjson', '--out', '-');
    expect(again.code).toBe(0);
    expect(again.stdout.trim().split('\n')).toHaveLength(5);
  });
});

describe.runIf(process.platform === 'linux')('telemark export into what is not a regular file', () => {
  const exportTo = (out: string, options: { env?: NodeJS.ProcessEnv; stdout?: number } = {}) =>
    spawn(process.execPath, [CLI, 'export', '--data', dataDir, '--format', 'ndjson', '--out', out], {
      stdio: ['ignore', options.stdout ?? 'pipe', 'pipe'],
      env: { ...process.env, ...options.env },
    });
  const ended = (child: ReturnType<typeof spawn>) =>
    new Promise<{ code: number | null; signal: NodeJS.Signals | null; stderr: string }>((resolve) => {
      let stderr = '';
      child.stderr?.on('data', (d: Buffer) => {
        stderr += d.toString();
      });
      child.on('close', (code, signal) => resolve({ code, signal, stderr }));
    });

  it('writes into a FIFO, which stays a FIFO, and through a symbolic link, which stays a link', async () => {
    const dir = tempDir();
    const fifo = join(dir, 'events.fifo');
    expect(spawnSync('mkfifo', [fifo]).status).toBe(0);
    const child = exportTo(fifo);
    const done = ended(child);
    // Read as a consumer would: the export's lines, to the end.
    const lines = fs.readFileSync(fifo, 'utf8').trim().split('\n');
    expect((await done).code).toBe(0);
    expect(lines).toHaveLength(5);
    expect(fs.lstatSync(fifo).isFIFO()).toBe(true);
    expect(fs.readdirSync(dir)).toEqual(['events.fifo']);

    const kept = join(tempDir(), 'kept.ndjson');
    fs.writeFileSync(kept, 'old\n');
    const link = join(dir, 'link.ndjson');
    fs.symlinkSync(kept, link);
    expect((await ended(exportTo(link))).code).toBe(0);
    expect(fs.lstatSync(link).isSymbolicLink()).toBe(true);
    expect(fs.readFileSync(kept, 'utf8').trim().split('\n')).toHaveLength(5);
  });

  it('reports a failed write to stdout as TMK_ERR_EXPORT, not as a bug', async () => {
    const full = fs.openSync('/dev/full', 'w');
    try {
      const run = await ended(exportTo('-', { stdout: full }));
      expect(run.code).toBe(1);
      expect(run.stderr).toMatch(/^telemark: \[TMK_ERR_EXPORT\] .*writing to stdout: .*ENOSPC/);
    } finally {
      fs.closeSync(full);
    }
    expect(fs.statSync('/dev/full').isCharacterDevice()).toBe(true);
  });

  it('stopped by a signal, leaves no copy of the export behind', async () => {
    // Into a FIFO nobody reads yet: the export waits there, its whole copy in the temporary directory.
    const tmp = tempDir();
    const fifo = join(tempDir(), 'events.fifo');
    expect(spawnSync('mkfifo', [fifo]).status).toBe(0);
    const child = exportTo(fifo, { env: { TMPDIR: tmp } });
    const done = ended(child);
    const scratch = async () => {
      for (;;) {
        const [dir] = fs.readdirSync(tmp);
        if (dir && fs.readdirSync(join(tmp, dir)).some((f) => f.endsWith('.ndjson'))) return dir;
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
    };
    expect(await scratch()).toMatch(/^telemark-export-/);
    child.kill('SIGINT');
    expect(await done).toMatchObject({ code: null, signal: 'SIGINT' });
    expect(fs.readdirSync(tmp)).toEqual([]);
  });
});
