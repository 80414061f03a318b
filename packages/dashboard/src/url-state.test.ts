import { describe, expect, it } from 'vitest';
import { offersTrait, traitChoices } from './trait-choices.js';
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

  it('keeps a trait breakdown (trait and event) and round-trips it', () => {
    const state = parseState('?dim=trait:method&bevent=login_success');
    expect(state).toMatchObject({ dimension: 'trait:method', breakdownEvent: 'login_success' });
    expect(serializeState(state)).toBe('?dim=trait%3Amethod&bevent=login_success');
    expect(parseState(serializeState(state))).toEqual(state);
    // Event names may hold spaces (Telepresence's "Used legacy syntax").
    const spaced = parseState(
      serializeState({ ...state, dimension: 'trait:run', breakdownEvent: 'Used legacy syntax' }),
    );
    expect(spaced).toMatchObject({ dimension: 'trait:run', breakdownEvent: 'Used legacy syntax' });
    // Back to a context tab drops the event.
    expect(serializeState({ ...state, dimension: 'arch' })).toBe('?dim=arch');
    expect(parseState('?dim=arch&bevent=login_success').breakdownEvent).toBeNull();
  });

  it('ignores a malformed trait breakdown', () => {
    for (const search of [
      '?dim=trait:method',
      '?dim=trait:method&bevent=',
      '?dim=trait:Method&bevent=login_success',
      '?dim=trait:&bevent=login_success',
      '?dim=trait:a-b&bevent=login_success',
      `?dim=trait:${'a'.repeat(65)}&bevent=login_success`,
      '?dim=trait:method&bevent=%20login',
      `?dim=trait:method&bevent=${'e'.repeat(81)}`,
      '?dim=trait:method&bevent=caf%C3%A9',
    ])
      expect(parseState(search), search).toMatchObject({ dimension: 'os_name', breakdownEvent: null });
  });

  it('offers the enum, boolean and enumList traits of each event for a trait breakdown', () => {
    const choices = traitChoices({
      app: 'x',
      events: {
        plain: { description: '' },
        failed: { description: '', traits: { error: { type: 'error' }, count: { type: 'integer' } } },
        login: {
          description: '',
          traits: {
            method: { type: 'enum', values: ['a', 'b'] },
            error: { type: 'error' },
            cached: { type: 'boolean' },
          },
        },
        gather: { description: '', traits: { logs: { type: 'enumList', values: ['cli'] } } },
      },
    });
    expect(choices).toEqual([
      { event: 'login', traits: ['cached', 'method'] },
      { event: 'gather', traits: ['logs'] },
    ]);
    expect(offersTrait(choices, 'login', 'method')).toBe(true);
    expect(offersTrait(choices, 'login', 'error')).toBe(false);
    expect(offersTrait(choices, 'gather', 'method')).toBe(false);
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
