/** Number and time formatting, the same everywhere (and in the tests that read figures off the page). */

const integer = new Intl.NumberFormat('en-US', { maximumFractionDigits: 0 });

export const fmtInt = (n: number | null | undefined): string =>
  n === null || n === undefined ? '—' : integer.format(n);

/**
 * An app version. The API gives an event's blank version as `""` (an empty cell); ingest stores a version
 * a client did not send as `unknown`, so both read the same.
 */
export const fmtVersion = (version: string): string => (version.trim() === '' ? 'unknown' : version);

/** The versions an error was seen in, oldest to newest (the same, for one version or none). */
export const fmtVersionSpan = (first: string, last: string): string =>
  first === last ? fmtVersion(first) : `${fmtVersion(first)} – ${fmtVersion(last)}`;

export const fmtPct = (rate: number | null | undefined, digits = 1): string =>
  rate === null || rate === undefined || !Number.isFinite(rate) ? '—' : `${(rate * 100).toFixed(digits)}%`;

/** A change between two counts, as a signed percentage. */
export function fmtChange(now: number, before: number): string {
  if (before === 0) return now === 0 ? '±0%' : 'new';
  const change = (now - before) / before;
  return `${change >= 0 ? '+' : '−'}${Math.abs(change * 100).toFixed(1)}%`;
}

/** A change between two rates, in percentage points. */
export function fmtPointChange(now: number | null, before: number | null): string {
  if (now === null || before === null) return '';
  const points = (now - before) * 100;
  return `${points >= 0 ? '+' : '−'}${Math.abs(points).toFixed(1)} pp`;
}

export function fmtSeconds(seconds: number | null | undefined): string {
  if (seconds === null || seconds === undefined || !Number.isFinite(seconds)) return '—';
  if (seconds < 1) return `${Math.round(seconds * 1000)} ms`;
  if (seconds < 120) return `${seconds.toFixed(1)} s`;
  if (seconds < 7200) return `${(seconds / 60).toFixed(1)} min`;
  if (seconds < 172_800) return `${(seconds / 3600).toFixed(1)} h`;
  return `${(seconds / 86_400).toFixed(1)} d`;
}

/** A bucket's start as the interval reads best: `2026-11-03`, `2026-11-03 14:00`, `2026-11`. */
export function fmtBucket(iso: string, interval: string): string {
  if (interval === 'hour') return `${iso.slice(0, 10)} ${iso.slice(11, 16)}`;
  if (interval === 'month') return iso.slice(0, 7);
  return iso.slice(0, 10);
}

export const fmtDate = (iso: string): string => iso.slice(0, 10);

export const fmtDateTime = (iso: string): string => `${iso.slice(0, 10)} ${iso.slice(11, 19)} UTC`;

/** Labels for context dimensions. */
export const DIMENSION_LABELS: Readonly<Record<string, string>> = {
  os_name: 'OS',
  os_version: 'OS version',
  app_version: 'Version',
  arch: 'Architecture',
  install_method: 'Install method',
  env_class: 'Environment',
  ci_vendor: 'CI vendor',
  platform: 'Platform',
  mode: 'Process',
};
