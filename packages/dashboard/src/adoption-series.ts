import type { AdoptionResponse } from './api.js';

/** Versions charted by name; the rest are one `other` series. */
export const TOP_VERSIONS = 8;
export const OTHER = 'other';

export interface AdoptionSeries {
  readonly label: string;
  /** Share of weekly active installs; null in a week without any. */
  readonly values: (number | null)[];
}

/**
 * The adoption chart's series: the `max` versions with the largest latest share, then one `other` series
 * holding every other version — the API's own `other` (versions under k installs) included — so each
 * week's shares still add up to 100%, in the chart and its table alike. Shares are recomputed from install
 * counts, not by adding rounded shares.
 */
export function adoptionSeries(data: AdoptionResponse, max: number = TOP_VERSIONS): AdoptionSeries[] {
  const latest = (v: AdoptionResponse['versions'][number]): number => v.share[v.share.length - 1] ?? 0;
  const named = data.versions.filter((v) => !v.other);
  const ranked = [...named].sort((a, b) => latest(b) - latest(a));
  const shown = ranked.slice(0, max);
  const folded = [...ranked.slice(max), ...data.versions.filter((v) => v.other)];
  const share = (installs: readonly number[]): (number | null)[] =>
    data.buckets.map((_, i) => {
      const active = data.activeInstalls[i] ?? 0;
      return active > 0 ? (installs[i] ?? 0) / active : null;
    });
  const series: AdoptionSeries[] = shown.map((v) => ({ label: v.version, values: share(v.installs) }));
  if (folded.length > 0)
    series.push({
      label: OTHER,
      values: share(data.buckets.map((_, i) => folded.reduce((sum, v) => sum + (v.installs[i] ?? 0), 0))),
    });
  return series;
}
