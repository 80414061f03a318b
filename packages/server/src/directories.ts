import fs from 'node:fs';
import path from 'node:path';

const existsAsDirectory = (error: unknown, dir: string): boolean =>
  (error as NodeJS.ErrnoException).code === 'EEXIST' &&
  fs.statSync(dir, { throwIfNoEntry: false })?.isDirectory() === true;

/**
 * `mkdir -p` that ends. Node's own (`mkdirSync(dir, { recursive: true })`, Node 20) steps back to the
 * parent when a directory cannot be made (ENOENT) and forward again once the parent exists, without a
 * stop: where the parent exists but cannot hold the child — `/proc/x` — it spins forever. Here a
 * directory is tried once more after its parent was made, and a second failure is final. `mode` (less
 * the umask) is for `dir` itself, when made here; parents it makes get the default.
 */
export function makeDirectory(dir: string, mode?: number): void {
  try {
    fs.mkdirSync(dir, mode);
  } catch (error) {
    if (existsAsDirectory(error, dir)) return;
    const parent = path.dirname(dir);
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT' || parent === dir) throw error;
    makeDirectory(parent);
    try {
      fs.mkdirSync(dir, mode);
    } catch (again) {
      if (!existsAsDirectory(again, dir)) throw again;
      return;
    }
  }
  // A directory made here is a name in its parent: synced, so that what is acknowledged inside it (the
  // intake log's segments, the journal) does not lose its directory to a power loss (until 2026-11-29
  // only the files and the directory's own entries were synced, not the directory's name).
  syncDirectorySync(path.dirname(dir));
}

/**
 * fsync a file or a directory now, by its path (start-up's paths and admin commands, where nothing waits
 * on the event loop).
 */
export function syncPathSync(target: string): void {
  const fd = fs.openSync(target, 'r');
  try {
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}

/** fsync a directory now, so that the names just made in it survive a power loss. */
export const syncDirectorySync: (dir: string) => void = syncPathSync;

/**
 * Write `data` to a new `file` (`flag`: `w`, or `wx` to refuse one that exists) and make it survive a
 * power loss: the file synced, then its name (its directory).
 */
export function writeFileDurablySync(
  file: string,
  data: string | Uint8Array,
  options: { readonly flag: 'w' | 'wx'; readonly mode?: number },
): void {
  const fd = fs.openSync(file, options.flag, options.mode);
  try {
    fs.writeFileSync(fd, data);
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
  syncDirectorySync(path.dirname(file));
}

/** fsync a directory, so that the names just created in it survive a power loss. */
export async function syncDirectory(dir: string): Promise<void> {
  const handle = await fs.promises.open(dir, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}
