import { describe, expect, it } from 'vitest';
import { filterParams, parseState, serializeState } from './url-state.js';

describe('view state in the URL', () => {
  it('has defaults that serialize to a bare URL', () => {
    const state = parseState('');
    expect(state).toMatchObject({
      app: null,
      range: '30d',
      interval: 'day',
      versions: [],
      includeCi: false,
      dimension: 'os_name',
    });
    expect(serializeState(state)).toBe('');
  });

  it('round-trips every filter, repeated keys included', () => {
    const search =
      '?app=tp&from=2026-09-01&to=2026-09-30&interval=week&version=2.20.1&version=2.21.0&os=macOS&env=interactive&env=agent&includeCi=1&dim=arch&error=abc123';
    const state = parseState(search);
    expect(state).toMatchObject({
      app: 'tp',
      range: null,
      from: '2026-09-01',
      to: '2026-09-30',
      interval: 'week',
      versions: ['2.20.1', '2.21.0'],
      os: ['macOS'],
      env: ['interactive', 'agent'],
      includeCi: true,
      dimension: 'arch',
      error: 'abc123',
    });
    expect(parseState(serializeState(state))).toEqual(state);
  });

  it('ignores values outside the closed lists', () => {
    const state = parseState('?interval=decade&dim=__proto__&env=root&range=9y&from=yesterday');
    expect(state).toMatchObject({ interval: 'day', dimension: 'os_name', env: [], range: '30d', from: null });
  });

  it('turns the inclusive custom end into the API’s exclusive `to`, and presets into a `from`', () => {
    const custom = filterParams(parseState('?app=tp&from=2026-09-01&to=2026-09-30'));
    expect(custom).toMatchObject({ app: 'tp', from: '2026-09-01', to: '2026-10-01' });
    const preset = filterParams(parseState('?range=7d'), Date.parse('2026-11-26T15:00:00Z'));
    expect(preset).toMatchObject({
      from: '2026-11-20',
      to: undefined,
      includeCi: undefined,
      version: undefined,
    });
  });
});
