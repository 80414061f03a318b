import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { removeTempDirs, tempDir } from './_test-env.js';
import { isLockHeld, LOCK_STALE_MS, readLockHolder, tryAcquireLock } from './lock.js';

afterEach(removeTempDirs);

describe('spool lock', () => {
  it('admits one holder at a time', () => {
    const file = path.join(tempDir(), 'sender.lock');
    const first = tryAcquireLock(file)!;
    expect(first).toBeDefined();
    expect(tryAcquireLock(file)).toBeUndefined();
    expect(isLockHeld(file)).toBe(true);
    expect(first.heartbeat()).toBe(true);
    first.release();
    expect(fs.existsSync(file)).toBe(false);
    expect(tryAcquireLock(file)).toBeDefined();
  });

  it('takes over a lock whose holder is dead', () => {
    const file = path.join(tempDir(), 'sender.lock');
    const dead = spawnSync(process.execPath, [
      '-e',
      'process.stdout.write(String(process.pid))',
    ]).stdout.toString();
    fs.writeFileSync(file, JSON.stringify({ pid: Number(dead), token: 'old' }));
    expect(isLockHeld(file)).toBe(false);
    const lock = tryAcquireLock(file)!;
    expect(lock).toBeDefined();
    expect(readLockHolder(file)?.pid).toBe(process.pid);
  });

  it('takes over a lock whose heartbeat is old, and the old holder notices it lost it', () => {
    const file = path.join(tempDir(), 'sender.lock');
    const old = tryAcquireLock(file)!;
    const past = new Date(Date.now() - LOCK_STALE_MS - 5000);
    fs.utimesSync(file, past, past);
    expect(isLockHeld(file)).toBe(false);
    const fresh = tryAcquireLock(file)!;
    expect(fresh).toBeDefined();
    expect(old.stillOwned()).toBe(false);
    expect(old.heartbeat()).toBe(false);
    old.release();
    expect(fresh.stillOwned()).toBe(true);
  });
});
