import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import { join } from 'node:path';
import { makeDirectory, writeFileDurablySync } from '../directories.js';
import { TelemarkError } from '../errors.js';

/**
 * The key of this deployment's install-id pseudonyms (docs/privacy.md, "Install ids"). A secret of the
 * deployment, not a constant of the code: with a key anyone can read, whoever holds a list of e-mail
 * addresses could hash it and find them among the stored ids.
 */
export interface InstallIdKey {
  readonly key: string;
  readonly source: 'env' | 'file' | 'generated';
}

export const INSTALL_ID_KEY_FILE = 'install-id-key';
export const INSTALL_ID_KEY_ENV = 'TELEMARK_INSTALL_ID_KEY';
/** A shorter key could be guessed; 16 characters is the least a generated one beats by far. */
const MIN_KEY_LENGTH = 16;

/**
 * `TELEMARK_INSTALL_ID_KEY` if set; else the key kept in `<data>/install-id-key`; else, when `create`,
 * a new random one written there (mode 0600). Without `create` (admin commands that only read) a
 * missing key is `undefined`: no pseudonym was ever made with one.
 *
 * Written with `wx`, so two processes starting on one data directory cannot each keep a key of their
 * own: the second reads the first's.
 */
export function resolveInstallIdKey(
  dataDir: string,
  options: { readonly create?: boolean; readonly env?: NodeJS.ProcessEnv } = {},
): InstallIdKey | undefined {
  const env = options.env ?? process.env;
  const fromEnv = env[INSTALL_ID_KEY_ENV]?.trim();
  if (fromEnv !== undefined && fromEnv !== '') {
    if (fromEnv.length < MIN_KEY_LENGTH)
      throw new TelemarkError(
        'TMK_ERR_CONFIG_INVALID',
        `${INSTALL_ID_KEY_ENV}: at least ${MIN_KEY_LENGTH} characters (for example: openssl rand -hex 32)`,
      );
    return { key: fromEnv, source: 'env' };
  }
  const file = join(dataDir, INSTALL_ID_KEY_FILE);
  const stored = readKey(file);
  if (stored !== undefined) return { key: stored, source: 'file' };
  if (!options.create) return undefined;
  makeDirectory(dataDir);
  const key = randomBytes(32).toString('hex');
  try {
    // Synced, file and name: a key lost to a power loss would be made again, silently, and every install
    // id stored after it would get another pseudonym (until 2026-11-29 it was written without a sync).
    writeFileDurablySync(file, `${key}\n`, { flag: 'wx', mode: 0o600 });
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    const theirs = readKey(file);
    if (theirs !== undefined) return { key: theirs, source: 'file' };
    throw error;
  }
  return { key, source: 'generated' };
}

function readKey(file: string): string | undefined {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8').trim();
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
  if (text.length < MIN_KEY_LENGTH)
    throw new TelemarkError(
      'TMK_ERR_CONFIG_INVALID',
      `${file}: the install-id key is missing or shorter than ${MIN_KEY_LENGTH} characters; restore it from a backup of the data directory (a new key would give every pseudonymised install a new id)`,
    );
  return text;
}
