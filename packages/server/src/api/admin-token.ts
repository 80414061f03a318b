import { randomBytes, timingSafeEqual } from 'node:crypto';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { makeDirectory } from '../directories.js';
import { TelemarkError } from '../errors.js';

export interface AdminToken {
  readonly token: string;
  /** True when it was generated now: the caller prints it once. */
  readonly generated: boolean;
  readonly source: 'env' | 'file' | 'generated';
}

const TOKEN_FILE = 'admin-token';

/**
 * The shortest `TELEMARK_ADMIN_TOKEN` taken (as `TELEMARK_INSTALL_ID_KEY`'s). The token gives every
 * stored answer, erasure and replay, on the port that takes ingest from anyone, and nothing slows a guess
 * down: a chosen `a` was found by the first try (until 2026-11-29 any length was taken).
 */
export const MIN_ADMIN_TOKEN_CHARS = 16;

/** Refuse a `TELEMARK_ADMIN_TOKEN` too short to keep; `telemark serve` asks before it opens the store. */
export function checkAdminTokenEnv(env: NodeJS.ProcessEnv = process.env): void {
  const fromEnv = env.TELEMARK_ADMIN_TOKEN?.trim();
  if (fromEnv && fromEnv.length < MIN_ADMIN_TOKEN_CHARS)
    throw new TelemarkError(
      'TMK_ERR_CONFIG_INVALID',
      `- TELEMARK_ADMIN_TOKEN: at least ${MIN_ADMIN_TOKEN_CHARS} characters (it has ${fromEnv.length}): it opens the query and admin API, on the port that takes ingest from anyone. Choose a longer one, or leave it unset to have one generated`,
    );
}

/**
 * The admin token for the query API and dashboard: `TELEMARK_ADMIN_TOKEN` if set (`checkAdminTokenEnv`);
 * else the one kept in `<data>/admin-token`; else a new random one, written there (mode 0600) and
 * reported as generated.
 */
export function resolveAdminToken(dataDir: string, env: NodeJS.ProcessEnv = process.env): AdminToken {
  checkAdminTokenEnv(env);
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
