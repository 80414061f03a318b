/**
 * The install id and the local secret. Both live in one file, `identity.json`, created by whoever first
 * delivers (the detached sender or `flush()`: a CLI's exit never reads it), atomically so that two
 * creators agree on one id: each writes a complete temp file and link()s it into place, which fails
 * instead of clobbering; losers read the winner. The secret keys the hashes of `hashed` string traits and
 * never leaves the machine.
 */
import { createHmac, randomBytes, randomUUID } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import {
  ensureDir,
  FILE_MODE,
  isMissing,
  readJson,
  readTextIfExists,
  tempName,
  unlinkQuietly,
} from './_fs.js';
import { FILES } from './paths.js';

export interface StoredIdentity {
  readonly installId: string;
  /** 32 random bytes, hex. */
  readonly secret: string;
  readonly createdAt: string;
  /** The legacy id file the install id was taken from, if any. */
  readonly legacySource?: string;
  /**
   * The run (`<sessionId>:<pid>`) whose events first got this id, when a sender created it for them:
   * their events are the install's first (`newInstall`).
   */
  readonly firstRun?: string;
}

export interface Identity {
  /** The id sent as `anonymousId` (rotated when a rotation period is set). */
  readonly installId: string;
  readonly secret: Buffer;
  /** This process created the identity file (first run on this machine, or first since it was deleted). */
  readonly created: boolean;
  /** Set when this process created the file from a legacy id. */
  readonly legacySource?: string;
}

export interface LegacyIdFile {
  readonly name: string;
  readonly path: string;
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const NIL_UUID = '00000000-0000-0000-0000-000000000000';
const DAY_MS = 86_400_000;

function parseStored(value: unknown): StoredIdentity | undefined {
  if (!value || typeof value !== 'object') return undefined;
  const v = value as Record<string, unknown>;
  if (typeof v.installId !== 'string' || !UUID.test(v.installId)) return undefined;
  if (typeof v.secret !== 'string' || !/^[0-9a-f]{64}$/.test(v.secret)) return undefined;
  return {
    installId: v.installId,
    secret: v.secret,
    createdAt: typeof v.createdAt === 'string' ? v.createdAt : new Date(0).toISOString(),
    ...(typeof v.legacySource === 'string' ? { legacySource: v.legacySource } : {}),
    ...(typeof v.firstRun === 'string' ? { firstRun: v.firstRun } : {}),
  };
}

/** The stored identity without creating anything; undefined when missing or unusable. */
export function readIdentity(configDir: string): StoredIdentity | undefined {
  const read = readJson(path.join(configDir, FILES.identity));
  return read.state === 'ok' ? parseStored(read.value) : undefined;
}

/**
 * A legacy id, when one of the tool's earlier id files holds one. Like Telepresence, a later entry of the
 * list wins over an earlier one. Only UUIDs are taken (Telepresence's all-zero error id is not).
 */
export function findLegacyId(files: readonly LegacyIdFile[]): { id: string; source: string } | undefined {
  let found: { id: string; source: string } | undefined;
  for (const file of files) {
    let text: string | undefined;
    try {
      text = readTextIfExists(file.path);
    } catch {
      continue;
    }
    const id = text?.trim().toLowerCase();
    if (id && UUID.test(id) && id !== NIL_UUID) found = { id, source: file.name };
  }
  return found;
}

function linkIntoPlace(temp: string, file: string): boolean {
  try {
    fs.linkSync(temp, file);
    return true;
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'EEXIST') return false;
    // File systems without hard links: exclusive create still never clobbers a winner.
    if (code === 'EPERM' || code === 'ENOTSUP' || code === 'EOPNOTSUPP' || code === 'ENOSYS') {
      try {
        fs.writeFileSync(file, fs.readFileSync(temp), { flag: 'wx', mode: FILE_MODE });
        return true;
      } catch (inner) {
        if ((inner as NodeJS.ErrnoException).code === 'EEXIST') return false;
        throw inner;
      }
    }
    throw error;
  }
}

/**
 * Read the identity, creating it when missing. Throws when the config directory cannot be written
 * (the caller treats that as "storage unavailable").
 */
export function ensureIdentity(
  configDir: string,
  legacyFiles: readonly LegacyIdFile[] | (() => readonly LegacyIdFile[]),
  now: number,
  rotationDays?: number,
): Identity {
  const { stored, created } = ensureStoredIdentity(configDir, legacyFiles, now);
  return toIdentity(stored, created, now, rotationDays);
}

/**
 * The stored identity, created when missing (then `firstRun`, if given, is recorded in it). Throws when
 * the config directory cannot be written.
 */
export function ensureStoredIdentity(
  configDir: string,
  legacyFiles: readonly LegacyIdFile[] | (() => readonly LegacyIdFile[]),
  now: number,
  firstRun?: string,
): { stored: StoredIdentity; created: boolean } {
  const file = path.join(configDir, FILES.identity);
  for (let attempt = 0; attempt < 5; attempt++) {
    const read = readJson(file);
    if (read.state === 'ok') {
      const stored = parseStored(read.value);
      if (stored) return { stored, created: false };
    }
    if (read.state !== 'missing') {
      // Unusable (truncated by a full disk, edited by hand): set it aside and make a new one.
      try {
        fs.renameSync(file, `${file}.invalid-${now}`);
      } catch (error) {
        if (!isMissing(error)) throw error;
      }
      continue;
    }
    const legacy = findLegacyId(typeof legacyFiles === 'function' ? legacyFiles() : legacyFiles);
    const stored: StoredIdentity = {
      installId: legacy?.id ?? randomUUID(),
      secret: randomBytes(32).toString('hex'),
      createdAt: new Date(now).toISOString(),
      ...(legacy ? { legacySource: legacy.source } : {}),
      ...(firstRun ? { firstRun } : {}),
    };
    ensureDir(configDir);
    const temp = tempName(file);
    try {
      fs.writeFileSync(temp, `${JSON.stringify(stored)}\n`, { mode: FILE_MODE });
      if (linkIntoPlace(temp, file)) return { stored, created: true };
    } finally {
      unlinkQuietly(temp);
    }
    // Another process won the race: loop and read its identity.
  }
  throw new Error(`could not create or read ${file}`);
}

function toIdentity(stored: StoredIdentity, created: boolean, now: number, rotationDays?: number): Identity {
  let secret: Buffer | undefined;
  return {
    installId: effectiveInstallId(stored, now, rotationDays),
    // Decoded when first needed (a catalog with `hashed` traits): most exits never need it.
    get secret() {
      secret ??= Buffer.from(stored.secret, 'hex');
      return secret;
    },
    created,
    ...(created && stored.legacySource ? { legacySource: stored.legacySource } : {}),
  };
}

/**
 * With a rotation period, the id sent changes every `rotationDays`, derived from the secret and the
 * period number, so every process agrees on it without writing anything. The first period keeps the
 * stored (possibly migrated) id.
 */
export function effectiveInstallId(stored: StoredIdentity, now: number, rotationDays?: number): string {
  if (!rotationDays) return stored.installId;
  const created = Date.parse(stored.createdAt);
  const period = Math.floor((now - (Number.isFinite(created) ? created : 0)) / (rotationDays * DAY_MS));
  if (period <= 0) return stored.installId;
  const bytes = createHmac('sha256', Buffer.from(stored.secret, 'hex'))
    .update(`install-id:${period}`)
    .digest()
    .subarray(0, 16);
  bytes[6] = ((bytes[6] ?? 0) & 0x0f) | 0x40;
  bytes[8] = ((bytes[8] ?? 0) & 0x3f) | 0x80;
  const hex = bytes.toString('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

/**
 * The keyed hash sent for `hashed` string traits: HMAC-SHA256 with the local secret, 24 hex characters
 * (96 bits; short of the collector's "long hex secret" scrub rule), cut to the trait's maxLength.
 */
export function hashTraitValue(secret: Buffer, value: string, maxLength: number): string {
  return createHmac('sha256', secret).update(value).digest('hex').slice(0, Math.min(24, maxLength));
}
