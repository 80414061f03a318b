/**
 * Semantic ordering of app versions (2.10 > 2.9, 2.20.0-rc.1 < 2.20.0), done in JS so both engines
 * agree: SQL only ever returns the distinct version strings, never sorts them.
 *
 * A leading `v` is ignored. Numeric dot-separated parts compare as numbers, a missing part counts as 0.
 * A pre-release (`-rc.1`) sorts before its release; build metadata (`+abc`) is ignored. Strings that are
 * not versions at all sort before every version, among themselves alphabetically.
 */
interface ParsedVersion {
  readonly core: readonly number[];
  readonly pre: readonly (number | string)[];
}

const VERSION = /^v?(\d+(?:\.\d+)*)(?:-([0-9A-Za-z.-]+))?(?:\+[0-9A-Za-z.-]*)?$/;

function parse(version: string): ParsedVersion | undefined {
  const match = VERSION.exec(version.trim());
  if (!match) return undefined;
  const core = match[1]!.split('.').map(Number);
  const pre = match[2] ? match[2].split('.').map((part) => (/^\d+$/.test(part) ? Number(part) : part)) : [];
  return { core, pre };
}

function comparePre(a: readonly (number | string)[], b: readonly (number | string)[]): number {
  if (a.length === 0 || b.length === 0) return (b.length === 0 ? 0 : 1) - (a.length === 0 ? 0 : 1);
  for (let i = 0; i < Math.max(a.length, b.length); i++) {
    const x = a[i];
    const y = b[i];
    if (x === undefined) return -1;
    if (y === undefined) return 1;
    if (x === y) continue;
    if (typeof x === 'number' && typeof y === 'number') return x - y;
    if (typeof x === 'number') return -1;
    if (typeof y === 'number') return 1;
    return x < y ? -1 : 1;
  }
  return 0;
}

/** Negative when `a` is older than `b`, positive when newer, 0 when equal. */
export function compareVersions(a: string, b: string): number {
  const x = parse(a);
  const y = parse(b);
  if (!x || !y) {
    if (x) return 1;
    if (y) return -1;
    return a < b ? -1 : a > b ? 1 : 0;
  }
  for (let i = 0; i < Math.max(x.core.length, y.core.length); i++) {
    const d = (x.core[i] ?? 0) - (y.core[i] ?? 0);
    if (d !== 0) return d;
  }
  const pre = comparePre(x.pre, y.pre);
  if (pre !== 0) return pre;
  return a < b ? -1 : a > b ? 1 : 0;
}

/** Newest first. */
export function sortVersionsDescending(versions: Iterable<string>): string[] {
  return [...versions].sort((a, b) => compareVersions(b, a));
}

/**
 * The newest of these versions; null when there is none. An empty (or blank) string is an event sent
 * without an app version, not a version: it never wins, so data without versions gives null rather than
 * `""` (api.md types `latestVersion`, `newestVersion` and `newInVersion` as a version or null).
 */
export function newestVersion(versions: Iterable<string>): string | null {
  let newest: string | null = null;
  for (const v of versions)
    if (!isBlank(v) && (newest === null || compareVersions(v, newest) > 0)) newest = v;
  return newest;
}

/** The oldest of these versions, blank strings left out as in `newestVersion`; null when there is none. */
export function oldestVersion(versions: Iterable<string>): string | null {
  let oldest: string | null = null;
  for (const v of versions)
    if (!isBlank(v) && (oldest === null || compareVersions(v, oldest) < 0)) oldest = v;
  return oldest;
}

const isBlank = (version: string): boolean => version.trim() === '';
