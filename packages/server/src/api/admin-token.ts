import { randomBytes, timingSafeEqual } from 'node:crypto';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { makeDirectory } from '../directories.js';

export interface AdminToken {
  readonly token: string;
  /** True when it was generated now: the caller prints it once. */
  readonly generated: boolean;
  readonly source: 'env' | 'file' | 'generated';
}

const TOKEN_FILE = 'admin-token';

/**
 * The admin token for the query API and dashboard: `TELEMARK_ADMIN_TOKEN` if set; else the one kept in
 * `<data>/admin-token`; else a new random one, written there (mode 0600) and reported as generated.
 */
export function resolveAdminToken(dataDir: string, env: NodeJS.ProcessEnv = process.env): AdminToken {
  const fromEnv = env.TELEMARK_ADMIN_TOKEN?.trim();
  if (fromEnv) return { token: fromEnv, generated: false, source: 'env' };
  const file = join(dataDir, TOKEN_FILE);
  try {
    const stored = readFileSync(file, 'utf8').trim();
    if (stored) return { token: stored, generated: false, source: 'file' };
  } catch {
    // not there yet: generate below
  }
  makeDirectory(dataDir);
  const token = `tmk_${randomBytes(24).toString('base64url')}`;
  writeFileSync(file, `${token}\n`, { mode: 0o600, flag: 'w' });
  return { token, generated: true, source: 'generated' };
}

/**
 * Undo a generation nobody saw: a start that fails before printing the token removes the file, so the
 * next start generates one and shows it (else the token would exist, never shown, found only in the file).
 */
export function forgetUnshownToken(dataDir: string, admin: AdminToken): void {
  if (admin.generated) rmSync(join(dataDir, TOKEN_FILE), { force: true });
}

/** Constant-time comparison of a presented token with the expected one. */
export function tokenMatches(presented: string | undefined, expected: string): boolean {
  if (!presented) return false;
  const a = Buffer.from(presented);
  const b = Buffer.from(expected);
  return a.length === b.length && timingSafeEqual(a, b);
}
