import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, describe, expect, it, vi } from 'vitest';
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

describe('makeDirectory and power loss', () => {
  afterEach(() => vi.restoreAllMocks());

  it('syncs the parent of every directory it makes, and nothing when the directory exists', () => {
    const opened = new Map<number, string>();
    const open = fs.openSync;
    vi.spyOn(fs, 'openSync').mockImplementation((...args: Parameters<typeof fs.openSync>) => {
      const fd = open(...args);
      opened.set(fd, String(args[0]));
      return fd;
    });
    const synced: string[] = [];
    const fsync = fs.fsyncSync;
    vi.spyOn(fs, 'fsyncSync').mockImplementation((fd: number) => {
      synced.push(opened.get(fd) ?? `fd ${fd}`);
      fsync(fd);
    });
    const deep = path.join(root, 'power', 'loss');
    makeDirectory(deep);
    expect(synced).toEqual([root, path.join(root, 'power')]);
    synced.length = 0;
    makeDirectory(deep);
    expect(synced).toEqual([]);
  });
});
