import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { makeDirectory } from './directories.js';

const root = fs.mkdtempSync(path.join(os.tmpdir(), 'telemark-mkdir-'));
afterAll(() => fs.rmSync(root, { recursive: true, force: true }));

describe('makeDirectory', () => {
  it('makes missing parents, and accepts a directory that exists (or a link to one)', () => {
    const deep = path.join(root, 'a', 'b', 'c');
    makeDirectory(deep);
    makeDirectory(deep);
    fs.symlinkSync(deep, path.join(root, 'link'));
    makeDirectory(path.join(root, 'link'));
    makeDirectory(path.join(root, 'link', 'd'));
    expect(fs.statSync(path.join(deep, 'd')).isDirectory()).toBe(true);
  });

  it('refuses a file, a path under a file and a link to nowhere, with the system error', () => {
    const file = path.join(root, 'file');
    fs.writeFileSync(file, '');
    expect(() => makeDirectory(file)).toThrow(/EEXIST/);
    expect(() => makeDirectory(path.join(file, 'sub', 'dir'))).toThrow(/ENOTDIR/);
    fs.symlinkSync(path.join(root, 'nowhere'), path.join(root, 'dangling'));
    expect(() => makeDirectory(path.join(root, 'dangling'))).toThrow(/EEXIST/);
    expect(() => makeDirectory(path.join(root, 'dangling', 'sub'))).toThrow(/EEXIST.*dangling'/);
  });
});
