/**
 * Internal, for tests: this process's file size limit (RLIMIT_FSIZE, the soft limit), lowered and put
 * back with util-linux's `prlimit`. A write crossing it is cut short and the rest fails with EFBIG ("File
 * too large"), as on a disk that fills up, in this process only (Vitest runs each test file in its own
 * fork). Undefined where it cannot be set (not Linux, no `prlimit`): the tests that need it are skipped.
 */
import { spawnSync } from 'node:child_process';

export interface FileSizeLimit {
  /** Lower the limit to `bytes`; throws if it could not be set. */
  lower(bytes: number): void;
  /** Put the limit back as it was; throws if it could not be set. */
  restore(): void;
}

export function fileSizeLimit(): FileSizeLimit | undefined {
  if (process.platform !== 'linux') return undefined;
  const pid = String(process.pid);
  const read = spawnSync('prlimit', ['--pid', pid, '--fsize', '--raw', '--noheadings', '--output=SOFT'], {
    encoding: 'utf8',
  });
  const original = read.status === 0 ? read.stdout.trim() : '';
  const set = (soft: string) => spawnSync('prlimit', ['--pid', pid, `--fsize=${soft}:`]).status === 0;
  if (original === '' || !set(original)) return undefined;
  const setOrThrow = (soft: string) => {
    if (!set(soft)) throw new Error(`prlimit could not set this process's file size limit to ${soft}`);
  };
  return { lower: (bytes) => setOrThrow(String(bytes)), restore: () => setOrThrow(original) };
}
