import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { removeTempDirs, tempDir } from './_test-env.js';
import { cachedOsFacts, osFactsKey } from './os-facts.js';

afterEach(removeTempDirs);

describe('OS facts', () => {
  it('are computed once and cached in the config dir, keyed by platform and kernel release', () => {
    const dir = tempDir();
    const facts = cachedOsFacts(dir, true);
    expect(facts).toEqual({
      name: expect.any(String),
      version: expect.any(String),
      build: expect.any(String),
    });
    const file = path.join(dir, 'os-facts.json');
    expect(JSON.parse(fs.readFileSync(file, 'utf8'))).toEqual({
      key: `${process.platform}:${os.release()}`,
      facts,
    });
    // A cached answer is used as is (no probing again)…
    fs.writeFileSync(
      file,
      JSON.stringify({ key: osFactsKey(), facts: { name: 'cached', version: '1', build: '2' } }),
    );
    expect(cachedOsFacts(dir, true)).toEqual({ name: 'cached', version: '1', build: '2' });
    // …until the kernel changes (an OS upgrade).
    fs.writeFileSync(
      file,
      JSON.stringify({ key: 'linux:0.0.0', facts: { name: 'stale', version: '1', build: '2' } }),
    );
    expect(cachedOsFacts(dir, true).name).not.toBe('stale');
  });

  it('are not written when asked not to (debug mode)', () => {
    const dir = tempDir();
    cachedOsFacts(dir, false);
    expect(fs.readdirSync(dir)).toEqual([]);
  });
});
