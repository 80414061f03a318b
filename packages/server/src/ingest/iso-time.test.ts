import { describe, expect, it } from 'vitest';
import { parseIsoTime } from './iso-time.js';

describe('ISO time parsing', () => {
  it('agrees with Date.parse on toISOString() output across centuries, leap days and edges', () => {
    const samples = [
      0,
      951_782_400_000,
      1_709_164_800_000,
      4_107_542_399_999,
      -1,
      Date.UTC(2000, 1, 29),
      Date.UTC(2100, 2, 1),
    ];
    for (let k = 0; k < 5000; k++) samples.push(Math.floor(Math.sin(k) * 1e13 + 1.7e12));
    for (const ms of samples) {
      const iso = new Date(ms).toISOString();
      if (iso.length === 24) expect(parseIsoTime(iso), iso).toBe(ms);
    }
  });

  it('refuses impossible dates and reads the other ISO forms too', () => {
    for (const bad of [
      '2026-02-30T00:00:00.000Z',
      '2100-02-29T00:00:00.000Z',
      '2026-13-01T00:00:00.000Z',
      '2026-01-01T24:00:00.000Z',
      '20x6-01-01T00:00:00.000Z',
      'yesterday',
      '',
    ])
      expect(parseIsoTime(bad), bad).toBeNaN();
    expect(parseIsoTime('2024-02-29T00:00:00.000Z')).toBe(Date.UTC(2024, 1, 29));
    expect(parseIsoTime('2026-01-01T10:00:00+02:00')).toBe(Date.UTC(2026, 0, 1, 8));
    expect(parseIsoTime('2026-01-01')).toBe(Date.UTC(2026, 0, 1));
    expect(parseIsoTime(12)).toBeNaN();
  });

  it('takes the other ISO 8601 / RFC 3339 forms, a zone-less time as UTC, and nothing else', () => {
    const nine = Date.UTC(2026, 10, 27, 9);
    expect(parseIsoTime('2026-11-27T09:00:00.123456+00:00')).toBe(nine + 123);
    expect(parseIsoTime('2026-11-27T10:00:00+0100')).toBe(nine);
    expect(parseIsoTime('2026-11-27T10:00+01')).toBe(nine);
    expect(parseIsoTime('2026-11-27 09:00:00z')).toBe(nine);
    expect(parseIsoTime('2026-11-27T09:00')).toBe(nine);
    expect(parseIsoTime('2026-11-27T09:00:00')).toBe(nine);
    for (const notIso of [
      'Fri, 27 Nov 2026 09:00:00 GMT',
      'Nov 27 2026',
      '2026',
      '2026-11-27T09',
      '27/11/2026',
      '2026-11-27T09:00:00 GMT',
    ])
      expect(parseIsoTime(notIso), notIso).toBeNaN();
  });

  it('takes a leap second, any number of fraction digits and six-digit years; refuses impossible days in every form', () => {
    const newYear = Date.UTC(2017, 0, 1);
    expect(parseIsoTime('2016-12-31T23:59:60Z')).toBe(newYear);
    expect(parseIsoTime('2016-12-31T23:59:60.250Z')).toBe(newYear + 250);
    expect(parseIsoTime('2017-01-01T08:59:60+09:00')).toBe(newYear);
    expect(parseIsoTime('2026-01-02T03:04:05.1234567890123Z')).toBe(Date.UTC(2026, 0, 2, 3, 4, 5, 123));
    expect(parseIsoTime('+010000-01-01T00:00:00.000Z')).toBe(Date.UTC(10_000, 0, 1));
    expect(parseIsoTime(new Date(Date.UTC(12_345, 5, 6)).toISOString())).toBe(Date.UTC(12_345, 5, 6));
    expect(parseIsoTime('+002026-11-27')).toBe(Date.UTC(2026, 10, 27));
    for (const bad of [
      '2026-02-30T00:00:00Z',
      '2026-02-29',
      '2100-02-29T00:00',
      '2026-04-31T10:00:00+02:00',
      '2026-00-10',
      '2016-12-31T23:59:61Z',
      '2016-02-30T23:59:60.000Z',
      '10000-01-01T00:00:00Z',
    ])
      expect(parseIsoTime(bad), bad).toBeNaN();
    expect(parseIsoTime('2024-02-29')).toBe(Date.UTC(2024, 1, 29));
  });
});
