import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { removeTempDirs, tempDir } from './_test-env.js';
import { isHolderLive, isLockHeld, LOCK_STALE_MS, readLockHolder, tryAcquireLock } from './lock.js';

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
    // A holder that stopped beating (stalled) long enough ago.
    const held = JSON.parse(fs.readFileSync(file, 'utf8'));
    fs.writeFileSync(file, JSON.stringify({ ...held, heartbeatAt: Date.now() - LOCK_STALE_MS - 5000 }));
    expect(isLockHeld(file)).toBe(false);
    const fresh = tryAcquireLock(file)!;
    expect(fresh).toBeDefined();
    expect(old.stillOwned()).toBe(false);
    const theirs = fs.readFileSync(file, 'utf8');
    expect(old.heartbeat()).toBe(false);
    old.release();
    // The old holder wrote nothing into the new holder's lock.
    expect(fs.readFileSync(file, 'utf8')).toBe(theirs);
    expect(fresh.stillOwned()).toBe(true);
  });

  it('keeps its heartbeat in the content, rewritten in place (one read tells a live holder)', async () => {
    const file = path.join(tempDir(), 'sender.lock');
    const lock = tryAcquireLock(file)!;
    const before = readLockHolder(file)!;
    const inode = fs.statSync(file).ino;
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(lock.heartbeat()).toBe(true);
    const after = readLockHolder(file)!;
    expect(after.heartbeatMs).toBeGreaterThan(before.heartbeatMs);
    expect(after).toMatchObject({ pid: process.pid, token: before.token });
    expect(JSON.parse(after.raw)).toMatchObject({ heartbeatAt: after.heartbeatMs });
    expect(fs.statSync(file).ino).toBe(inode);
    expect(after.raw.length).toBe(before.raw.length);
    lock.release();
    expect(fs.existsSync(file)).toBe(false);
  });

  it("reads the heartbeat of a lock written before 0.2 from the file's mtime", () => {
    const file = path.join(tempDir(), 'sender.lock');
    fs.writeFileSync(file, JSON.stringify({ pid: process.pid, token: 'old-sender', startedAt: 'x' }));
    expect(isLockHeld(file)).toBe(true);
    const past = new Date(Date.now() - LOCK_STALE_MS - 5000);
    fs.utimesSync(file, past, past);
    expect(isLockHeld(file)).toBe(false);
    expect(tryAcquireLock(file)).toBeDefined();
  });

  it('isLockHeld (written out for the exit path) agrees with isHolderLive(readLockHolder()) on every kind of lock', () => {
    const dir = tempDir();
    const now = Date.now();
    const dead = Number(
      spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))']).stdout,
    );
    const fresh = now - 1000;
    const stale = now - LOCK_STALE_MS - 5000;
    const cases: Record<string, string> = {
      'live, own pid': JSON.stringify({ pid: process.pid, token: 't', heartbeatAt: fresh }),
      'live, other process (pid 1)': JSON.stringify({ pid: 1, token: 't', heartbeatAt: fresh }),
      'stale heartbeat': JSON.stringify({ pid: process.pid, token: 't', heartbeatAt: stale }),
      'dead pid': JSON.stringify({ pid: dead, token: 't', heartbeatAt: fresh }),
      'pid not a number': JSON.stringify({ pid: 'x', token: 't', heartbeatAt: fresh }),
      'pid zero': JSON.stringify({ pid: 0, token: 't', heartbeatAt: fresh }),
      'no heartbeat (before 0.2)': JSON.stringify({ pid: process.pid, token: 't' }),
      'not JSON': 'garbage',
    };
    for (const [name, content] of Object.entries(cases)) {
      const file = path.join(dir, `${name}.lock`);
      fs.writeFileSync(file, content);
      expect(isLockHeld(file, now), name).toBe(isHolderLive(readLockHolder(file), now));
    }
    expect(isLockHeld(path.join(dir, 'missing.lock'), now)).toBe(false);
  });
});
