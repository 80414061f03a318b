import { describe, expect, it } from 'vitest';
import { adoptionSeries } from './adoption-series.js';
import type { AdoptionResponse } from './api.js';

const response = (versions: AdoptionResponse['versions'], activeInstalls: number[]): AdoptionResponse => ({
  view: 'adoption',
  params: {},
  generatedMs: 0,
  buckets: activeInstalls.map((_, i) => new Date(Date.UTC(2026, 10, 2 + 7 * i)).toISOString()),
  activeInstalls,
  versions,
});
const row = (version: string, installs: number[], active: number[], other = false) => ({
  version,
  other,
  installs,
  share: installs.map((n, i) => (active[i] ? Math.round((n / active[i]!) * 1e6) / 1e6 : null)),
});

describe('version adoption series', () => {
  it('folds versions beyond the top ones into other, with the API’s other, so weeks add up to 100%', () => {
    const active = [100, 120];
    const versions = [
      row('2.21.0', [0, 50], active),
      row('2.20.2', [40, 30], active),
      row('2.20.1', [30, 20], active),
      row('2.17.1', [20, 10], active),
      row('2.16.1', [5, 6], active),
      row('other', [5, 4], active, true),
    ];
    const series = adoptionSeries(response(versions, active), 3);
    expect(series.map((s) => s.label)).toEqual(['2.21.0', '2.20.2', '2.20.1', 'other']);
    // other = 2.17.1 + 2.16.1 + the API's other.
    expect(series[3]?.values).toEqual([30 / 100, 20 / 120]);
    for (let week = 0; week < active.length; week++)
      expect(series.reduce((sum, s) => sum + (s.values[week] ?? 0), 0)).toBeCloseTo(1, 9);
  });

  it('keeps every version when there are few, and the API’s other as it is', () => {
    const active = [10];
    const series = adoptionSeries(
      response([row('1.1.0', [7], active), row('other', [3], active, true)], active),
    );
    expect(series).toEqual([
      { label: '1.1.0', values: [0.7] },
      { label: 'other', values: [0.3] },
    ]);
    expect(adoptionSeries(response([row('1.1.0', [0], [0])], [0]))).toEqual([
      { label: '1.1.0', values: [null] },
    ]);
  });
});
