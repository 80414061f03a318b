/**
 * One deliverer per spool: an O_EXCL lock file holding the owner's pid and a random token. The owner
 * touches it every few seconds; a lock whose pid is dead or whose heartbeat is old is stale and may be
 * taken over. Taking over renames the stale file aside first and checks it is still the one judged stale,
 * so two processes that both saw a stale lock cannot both end up owning it.
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { ensureDir, FILE_MODE, isProcessAlive, tempName, unlinkQuietly } from './_fs.js';

export const LOCK_HEARTBEAT_MS = 5_000;
export const LOCK_STALE_MS = 30_000;

export interface LockHolder {
  readonly pid: number;
  readonly token: string;
  readonly heartbeatMs: number;
  readonly raw: string;
}

export interface Lock {
  readonly token: string;
  /** Refresh the heartbeat; false when the lock is no longer ours. */
  heartbeat(): boolean;
  stillOwned(): boolean;
  release(): void;
}

export function readLockHolder(file: string): LockHolder | undefined {
  let raw: string;
  let heartbeatMs: number;
  try {
    raw = fs.readFileSync(file, 'utf8');
    heartbeatMs = fs.statSync(file).mtimeMs;
  } catch {
    return undefined;
  }
  let value: { pid?: unknown; token?: unknown } = {};
  try {
    value = JSON.parse(raw);
  } catch {}
  return {
    pid: typeof value.pid === 'number' ? value.pid : -1,
    token: typeof value.token === 'string' ? value.token : '',
    heartbeatMs,
    raw,
  };
}

export function isHolderLive(holder: LockHolder | undefined, now: number): boolean {
  return !!holder && isProcessAlive(holder.pid) && holder.heartbeatMs > now - LOCK_STALE_MS;
}

/** A live process holds the lock (used on the exit path to avoid spawning a second sender). */
export function isLockHeld(file: string, now = Date.now()): boolean {
  return isHolderLive(readLockHolder(file), now);
}

/** Create the lock with its content in one step (link of a complete temp file), never clobbering. */
function createExclusive(file: string, token: string): boolean {
  const content = JSON.stringify({ pid: process.pid, token, startedAt: new Date().toISOString() });
  const temp = tempName(file);
  try {
    fs.writeFileSync(temp, content, { mode: FILE_MODE });
    fs.linkSync(temp, file);
    return true;
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'EEXIST') return false;
    if (code !== 'EPERM' && code !== 'ENOTSUP' && code !== 'EOPNOTSUPP' && code !== 'ENOSYS') throw error;
    try {
      fs.writeFileSync(file, content, { flag: 'wx', mode: FILE_MODE });
      return true;
    } catch (inner) {
      if ((inner as NodeJS.ErrnoException).code === 'EEXIST') return false;
      throw inner;
    }
  } finally {
    unlinkQuietly(temp);
  }
}

export function tryAcquireLock(file: string, now = Date.now()): Lock | undefined {
  ensureDir(path.dirname(file));
  const token = randomBytes(8).toString('hex');
  let owned = createExclusive(file, token);
  if (!owned) {
    const holder = readLockHolder(file);
    if (holder && isHolderLive(holder, now)) return undefined;
    const aside = `${file}.stale-${token}`;
    try {
      fs.renameSync(file, aside);
    } catch {
      return undefined;
    }
    let asideRaw: string | undefined;
    try {
      asideRaw = fs.readFileSync(aside, 'utf8');
    } catch {}
    if (!holder || asideRaw !== holder.raw) {
      // Someone replaced the stale lock between our read and our rename: give theirs back.
      try {
        fs.linkSync(aside, file);
      } catch {}
      unlinkQuietly(aside);
      return undefined;
    }
    unlinkQuietly(aside);
    owned = createExclusive(file, token);
    if (!owned) return undefined;
  }
  const stillOwned = () => readLockHolder(file)?.token === token;
  return {
    token,
    stillOwned,
    heartbeat() {
      if (!stillOwned()) return false;
      const time = new Date();
      try {
        fs.utimesSync(file, time, time);
        return true;
      } catch {
        return false;
      }
    },
    release() {
      if (stillOwned()) unlinkQuietly(file);
    },
  };
}
