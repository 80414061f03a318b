import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { prepareDataDir } from './open-store.js';

const root = fs.mkdtempSync(path.join(os.tmpdir(), 'telemark-open-store-'));
afterAll(() => fs.rmSync(root, { recursive: true, force: true }));

describe.runIf(process.platform !== 'win32')('prepareDataDir', () => {
  it('makes a new data directory for its owner only; its parents, and one that exists, keep their modes', () => {
    const parent = path.join(root, 'srv');
    const data = path.join(parent, 'telemark-data');
    prepareDataDir(data);
    expect(fs.statSync(data).mode & 0o777).toBe(0o700);
    expect(fs.statSync(parent).mode & 0o077).not.toBe(0);

    const shared = path.join(root, 'shared');
    fs.mkdirSync(shared, { mode: 0o750 });
    prepareDataDir(shared);
    expect(fs.statSync(shared).mode & 0o777).toBe(0o750);
  });
});
