import { describe, expect, it } from 'vitest';
import { buildAppRegistry } from './registry.js';
import { DEFAULTS } from './serve-config.js';

/** A catalog of one event for `app`. */
const catalog = (app: string) => ({ app, events: { run: { description: 'A command ran.' } } });

const options = { baseDir: '.', defaultRateLimits: DEFAULTS.rateLimits };

describe('app registry', () => {
  it('reports every problem of an app with an invalid name, and registers it not', () => {
    // Until 2026-11-29 the name's problem was the only one: its keys and catalog were checked once it
    // was fixed, a problem per restart.
    const { registry, problems } = buildAppRegistry(
      {
        'my app': { writeKeys: ['hx-key-0001'] },
        hx: { catalog: catalog('hx'), writeKeys: ['hx-key-0001'] },
        'bad/name': { catalog: catalog('other'), allowKeyless: true },
      },
      options,
    );
    expect(problems).toContain('apps.my app: app names are 1–64 letters, digits, ".", "_" or "-"');
    expect(problems).toContain('apps.my app.catalog: required (a catalog JSON file, or the catalog inline)');
    expect(problems).toContain(
      'apps.hx.writeKeys: a write key is also used by app "my app"; keys must be unique',
    );
    expect(problems).toContain('apps.bad/name: app names are 1–64 letters, digits, ".", "_" or "-"');
    expect(problems).toContain(
      'apps.bad/name.catalog: the catalog is for app "other"; register it as apps.other',
    );
    expect(registry.get('my app')).toBeUndefined();
    expect(registry.byWriteKey('hx-key-0001')?.name).toBe('hx');
    // A valid-shaped app with a bad name is still not registered.
    const alone = buildAppRegistry(
      { 'x y': { catalog: catalog('x y'), writeKeys: ['xy-key-0001'] } },
      options,
    );
    expect(alone.problems).toContain('apps.x y: app names are 1–64 letters, digits, ".", "_" or "-"');
    expect(alone.registry.byWriteKey('xy-key-0001')).toBeUndefined();
  });
});
