import fs from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { bearer, ourMessage, postJson, runCli, startInProcess, tempDir } from './_helpers.js';

const telemark = (cwd: string, ...args: string[]) => runCli(args, { cwd });

/** Text a client chose, which a spreadsheet would run as a formula if a CSV cell started with it. */
const FORMULAS = ['=HYPERLINK("http://evil.example","x")', '+1+2', '-2+3', '@SUM(A1)'];

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
