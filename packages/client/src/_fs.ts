/**
 * Small synchronous file helpers. Everything the client keeps is small (a few hundred bytes per file,
 * spool segments aside) and private to the user: directories 0700, files 0600.
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';

export const DIR_MODE = 0o700;
export const FILE_MODE = 0o600;

export function ensureDir(dir: string): void {
  fs.mkdirSync(dir, { recursive: true, mode: DIR_MODE });
}

export function isMissing(error: unknown): boolean {
  const code = (error as NodeJS.ErrnoException | undefined)?.code;
  return code === 'ENOENT' || code === 'ENOTDIR';
}

/** File text, or undefined when it does not exist. Other errors are thrown. */
export function readTextIfExists(file: string): string | undefined {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch (error) {
    if (isMissing(error)) return undefined;
    throw error;
  }
}

export type JsonRead =
  | { state: 'missing' }
  | { state: 'ok'; value: unknown }
  | { state: 'invalid'; error: string };

/** Reads a JSON file without ever throwing: missing, parsed, or invalid (unparseable or unreadable). */
export function readJson(file: string): JsonRead {
  let text: string | undefined;
  try {
    text = readTextIfExists(file);
  } catch (error) {
    return { state: 'invalid', error: (error as Error).message };
  }
  if (text === undefined) return { state: 'missing' };
  try {
    return { state: 'ok', value: JSON.parse(text) };
  } catch (error) {
    return { state: 'invalid', error: (error as Error).message };
  }
}

/** A parsed JSON object, or undefined for anything else (missing, invalid, not an object). */
export function readJsonObject(file: string): Record<string, unknown> | undefined {
  const read = readJson(file);
  if (read.state !== 'ok') return undefined;
  const value = read.value;
  return value && typeof value === 'object' && !Array.isArray(value)
    ? (value as Record<string, unknown>)
    : undefined;
}

export function tempName(file: string): string {
  return `${file}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
}

/** Replace a file atomically (temp file + rename): readers see the old or the new content, never half. */
export function writeFileAtomic(file: string, content: string): void {
  ensureDir(path.dirname(file));
  const temp = tempName(file);
  try {
    fs.writeFileSync(temp, content, { mode: FILE_MODE });
    fs.renameSync(temp, file);
  } catch (error) {
    try {
      fs.unlinkSync(temp);
    } catch {}
    throw error;
  }
}

export function writeJsonAtomic(file: string, value: unknown): void {
  writeFileAtomic(file, `${JSON.stringify(value)}\n`);
}

export function unlinkQuietly(file: string): boolean {
  try {
    fs.unlinkSync(file);
    return true;
  } catch {
    return false;
  }
}

/** True when a process with this pid exists (EPERM means it exists but belongs to someone else). */
export function isProcessAlive(pid: number): boolean {
  if (!Number.isSafeInteger(pid) || pid <= 0) return false;
  if (pid === process.pid) return true;
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}
