/**
 * One deliverer per spool: an O_EXCL lock file holding the owner's pid, a random token and its heartbeat
 * time. The owner rewrites the heartbeat in place every few seconds (which also moves the file's mtime,
 * the heartbeat of senders before 0.2); a lock whose pid is dead or whose heartbeat is old is stale and
 * may be taken over. Taking over renames the stale file aside first and checks it is still the one judged
 * stale, so two processes that both saw a stale lock cannot both end up owning it.
 *
 * A CLI's exit looks at the lock with one read: the heartbeat is in the content.
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
  try {
    raw = fs.readFileSync(file, 'utf8');
  } catch {
    return undefined;
  }
  let value: { pid?: unknown; token?: unknown; heartbeatAt?: unknown } = {};
  try {
    value = JSON.parse(raw);
  } catch {}
  let heartbeatMs = typeof value.heartbeatAt === 'number' ? value.heartbeatAt : Number.NaN;
  // A lock of a sender before 0.2: its heartbeat is the file's mtime.
  if (!Number.isFinite(heartbeatMs))
    try {
      heartbeatMs = fs.statSync(file).mtimeMs;
    } catch {
      return undefined;
    }
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

/**
 * A live process holds the lock (used on the exit path to avoid spawning a second sender). The same
 * verdict as `isHolderLive(readLockHolder(file))`, in one function for the usual lock (its heartbeat in
 * its content): on a CLI's exit every function run for the first time is compiled first.
 */
export function isLockHeld(file: string, now = Date.now()): boolean {
  let raw: string;
  try {
    raw = fs.readFileSync(file, 'utf8');
  } catch {
    return false;
  }
  try {
    const { pid, heartbeatAt } = JSON.parse(raw) as { pid?: unknown; heartbeatAt?: unknown };
    if (typeof heartbeatAt === 'number' && Number.isFinite(heartbeatAt)) {
      if (!(heartbeatAt > now - LOCK_STALE_MS)) return false;
      // isProcessAlive(), written out.
      if (typeof pid !== 'number' || !Number.isSafeInteger(pid) || pid <= 0) return false;
      if (pid === process.pid) return true;
      try {
        process.kill(pid, 0);
        return true;
      } catch (error) {
        return (error as NodeJS.ErrnoException).code === 'EPERM';
      }
    }
  } catch {}
  // Unreadable, or a lock of a sender before 0.2 (its heartbeat is the file's mtime).
  return isHolderLive(readLockHolder(file), now);
}

/**
 * The lock's content. Always the same length for one owner (the heartbeat is a 13-digit ms time until
 * the year 2286), so a heartbeat overwrites it in place.
 */
function lockContent(token: string, startedAt: string, heartbeatAt: number): string {
  return JSON.stringify({ pid: process.pid, token, startedAt, heartbeatAt });
}

/**
 * Create the lock with its content in one step (link of a complete temp file), never clobbering.
 * Returns an open descriptor of the lock's file (for heartbeats), or undefined when it is held.
 */
function createExclusive(file: string, content: string): number | undefined {
  const temp = tempName(file);
  let fd: number | undefined;
  try {
    fd = fs.openSync(temp, 'wx', FILE_MODE);
    fs.writeSync(fd, content, 0);
    fs.linkSync(temp, file);
    return fd;
  } catch (error) {
    if (fd !== undefined) fs.closeSync(fd);
    fd = undefined;
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'EEXIST') return undefined;
    if (code !== 'EPERM' && code !== 'ENOTSUP' && code !== 'EOPNOTSUPP' && code !== 'ENOSYS') throw error;
    let direct: number | undefined;
    try {
      direct = fs.openSync(file, 'wx', FILE_MODE);
      fs.writeSync(direct, content, 0);
      return direct;
    } catch (inner) {
      if (direct !== undefined) fs.closeSync(direct);
      if ((inner as NodeJS.ErrnoException).code === 'EEXIST') return undefined;
      throw inner;
    }
  } finally {
    unlinkQuietly(temp);
  }
}

export function tryAcquireLock(file: string, now = Date.now()): Lock | undefined {
  ensureDir(path.dirname(file));
  const token = randomBytes(8).toString('hex');
  const startedAt = new Date(now).toISOString();
  let fd = createExclusive(file, lockContent(token, startedAt, Date.now()));
  if (fd === undefined) {
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
    fd = createExclusive(file, lockContent(token, startedAt, Date.now()));
    if (fd === undefined) return undefined;
  }
  const descriptor = fd;
  let closed = false;
  const stillOwned = () => readLockHolder(file)?.token === token;
  return {
    token,
    stillOwned,
    heartbeat() {
      if (closed || !stillOwned()) return false;
      try {
        // Through our own descriptor: whatever is at the path now, only our lock's file is written.
        const content = lockContent(token, startedAt, Date.now());
        const written = fs.writeSync(descriptor, content, 0);
        if (fs.fstatSync(descriptor).size !== written) fs.ftruncateSync(descriptor, written);
        return true;
      } catch {
        return false;
      }
    },
    release() {
      if (!closed) {
        closed = true;
        try {
          fs.closeSync(descriptor);
        } catch {}
      }
      if (stillOwned()) unlinkQuietly(file);
    },
  };
}
