import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { telepresence } from '../catalogs/telepresence.js';
import { MAX_SCRUB_INPUT } from '../scrub/_cut.js';
import { CatalogError, catalogFingerprint, catalogFromJSON, catalogToJSON, defineCatalog } from './define.js';
import { catalogToMarkdown } from './markdown.js';
import type { CatalogInput } from './types.js';
import { validateEvent } from './validate.js';

/** Telepresence's published TELEMETRY.md, copied verbatim (the team's seed document). */
const SEED = new URL('../../../../test/fixtures/telepresence-TELEMETRY.md', import.meta.url);

/** The seed's table rows: metric name → description, as published. */
function seedMetrics(): Map<string, string> {
  const rows = new Map<string, string>();
  for (const line of readFileSync(SEED, 'utf8').split('\n')) {
    const m = /^\|\s*`([^`]+)`\s*\|\s*(.*?)\s*\|\s*$/.exec(line);
    if (m?.[1] && m[2] !== undefined) rows.set(m[1], m[2]);
  }
  return rows;
}

const minimal = (extra: Partial<CatalogInput> = {}): CatalogInput => ({
  app: 'mytool',
  events: {
    build_fail: { description: 'A build failed.', traits: { error: { type: 'error', required: true } } },
  },
  ...extra,
});

describe('the Telepresence catalog', () => {
  it('has exactly the 15 seed metrics, names kept exactly', () => {
    const seed = seedMetrics();
    expect(seed.size).toBe(15);
    expect([...telepresence.eventNames].sort()).toEqual([...seed.keys()].sort());
    expect(telepresence.eventNames).toContain('Used legacy syntax');
    expect(telepresence.app).toBe('telepresence2');
    expect(telepresence.input.optOutEnv).toEqual(['SCOUT_DISABLE']);
  });

  it('generates a "what we collect" page that reproduces the seed table', () => {
    const page = catalogToMarkdown(telepresence);
    const rows = new Map<string, string>();
    for (const line of page.split('\n')) {
      const m = /^\| `([^`]+)` \| (.*) \|$/.exec(line);
      if (m?.[1] && m[2] !== undefined && !rows.has(m[1])) rows.set(m[1], m[2]);
    }
    for (const [name, description] of seedMetrics()) expect(rows.get(name), name).toBe(description);
    expect(page).toContain('no identifying information');
    expect(page).toContain('`SCOUT_DISABLE=1`');
    expect(page).toContain('TELEPRESENCE_REPORT_GITHUB_ACTIONS_INTEGRATION');
  });

  it('declares the outcomes and the connect funnel', () => {
    expect(Object.keys(telepresence.input.outcomes)).toEqual([
      'intercept',
      'login',
      'vpn_diag',
      'incluster_dns',
    ]);
    expect(telepresence.input.funnels.connect.steps).toEqual([
      'connect',
      'connecting_traffic_manager',
      'finished_connecting_traffic_manager',
    ]);
  });

  it('accepts what Telepresence really sends, narrowed', () => {
    expect(validateEvent(telepresence, 'connect', { time_to_connect: 2.873, mapped_namespaces: 0 })).toEqual({
      ok: true,
      traits: { time_to_connect: 2.873, mapped_namespaces: 0 },
    });
    expect(
      validateEvent(telepresence, 'Used legacy syntax', {
        swap_deployment: true,
        unsupported_flags: ['--also-proxy', '--expose-foo=1', '--expose-foo', 'acme-prod', 42],
      }),
    ).toEqual({ ok: false, reason: 'invalid_type', detail: 'unsupported_flags items must be strings' });
    expect(
      validateEvent(telepresence, 'Used legacy syntax', {
        unsupported_flags: ['--also-proxy', '--expose-foo=1', 'x'],
      }),
    ).toEqual({ ok: true, traits: { unsupported_flags: ['--also-proxy', '--expose-foo'] } });
  });

  it('keeps no value attached to a short flag, and no long flag with something else attached', () => {
    expect(
      validateEvent(telepresence, 'Used legacy syntax', {
        unsupported_flags: ['-pHunter2Secret', '-ujohnsmith', '-hdb01-acme-prod', '-n=acme', '-v', '-xvf'],
      }),
    ).toEqual({ ok: true, traits: { unsupported_flags: ['-p', '-u', '-h', '-n', '-v', '-x'] } });
    expect(
      validateEvent(telepresence, 'Used legacy syntax', {
        unsupported_flags: ['--name:acme', '--docker/acme', '--', '-', '---x', '-@x', '--ok'],
      }),
    ).toEqual({ ok: true, traits: { unsupported_flags: ['--ok'] } });
  });
});

describe('validateEvent', () => {
  const c = telepresence;
  it.each([
    ['unknown event', 'connect_error', {}, 'unknown_event'],
    ['prototype key as event', '__proto__', {}, 'unknown_event'],
    ['unknown trait', 'intercept_success', { service_name: 'echo' }, 'unknown_trait'],
    ['prototype key as trait', 'intercept_success', JSON.parse('{"__proto__": 1}'), 'unknown_trait'],
    ['missing required trait', 'intercept_fail', {}, 'missing_trait'],
    ['wrong type', 'incluster_dns_query', { had_results: 'yes' }, 'invalid_type'],
    ['not an enum value', 'login_success', { method: 'password' }, 'invalid_enum'],
    ['negative duration', 'connect', { time_to_connect: -1 }, 'out_of_range'],
    ['non-integer count', 'connect', { mapped_namespaces: 1.5 }, 'invalid_type'],
    ['NaN', 'connect', { time_to_connect: Number.NaN }, 'invalid_type'],
    ['array as traits', 'intercept_success', [], 'not_an_object'],
    ['enum list item', 'used_gather_logs', { daemon_logs: ['cli', 'root'] }, 'invalid_enum'],
  ])('%s → %s', (_label, event, traits, reason) => {
    const result = validateEvent(c, event, traits);
    expect(result.ok).toBe(false);
    if (!result.ok) expect(result.reason).toBe(reason);
  });

  it('takes an Error for an error trait and truncates long errors', () => {
    const ok = validateEvent(c, 'intercept_fail', { error: new Error('x'.repeat(5000)) });
    expect(ok.ok && (ok.traits.error as string).length).toBe(1024);
  });

  it('unscrubbed (report()), keeps an error up to the scrubber cap, cut at a space so no token is halved', () => {
    const secret = 'postgres://admin:supersecretpassword@db/x';
    const error = `${'failed '.repeat(2340)}${secret} and more`;
    const cut = MAX_SCRUB_INPUT - 7 * 2340;
    expect(cut > 0 && cut < secret.length).toBe(true);
    const sent = validateEvent(c, 'intercept_fail', { error }, { unscrubbedMargin: Infinity });
    expect(sent.ok && sent.traits.error).toBe('failed '.repeat(2340).trimEnd());
    const short = validateEvent(
      c,
      'intercept_fail',
      { error: `${secret} ok` },
      { unscrubbedMargin: Infinity },
    );
    expect(short.ok && short.traits.error).toBe(`${secret} ok`);
    const token = validateEvent(
      c,
      'intercept_fail',
      { error: 'x'.repeat(20_000) },
      { unscrubbedMargin: Infinity },
    );
    expect(token.ok && token.traits.error).toBe('');
  });

  it('unscrubbed with a margin (the collector), keeps an error to a space that far past its maxLength', () => {
    const secret = 'postgres://admin:hunter2@db.example.com/x';
    const error = `${'a '.repeat(510)}${secret} ${'b'.repeat(300)}`;
    const kept = validateEvent(c, 'intercept_fail', { error }, { unscrubbedMargin: 256 });
    expect(kept.ok && kept.traits.error).toBe(`${'a '.repeat(510)}${secret}`);
    const tight = validateEvent(c, 'intercept_fail', { error }, { unscrubbedMargin: 8 });
    expect(tight.ok && tight.traits.error).toBe('a '.repeat(510).trimEnd());
    // A margin of 0 still cuts at a space, never inside the token that crosses maxLength.
    const none = validateEvent(c, 'intercept_fail', { error }, { unscrubbedMargin: 0 });
    expect(none.ok && none.traits.error).toBe('a '.repeat(510).trimEnd());
    const whole = validateEvent(c, 'intercept_fail', { error }, { unscrubbedMargin: Infinity });
    expect(whole.ok && whole.traits.error).toBe(error);
    const bad = validateEvent(c, 'intercept_fail', { error: 7 }, { unscrubbedMargin: 8 });
    expect(bad).toMatchObject({ ok: false, reason: 'invalid_type' });
  });

  it('deduplicates enum lists and drops undefined values', () => {
    expect(
      validateEvent(c, 'used_gather_logs', {
        daemon_logs: ['cli', 'cli', 'daemon'],
        get_pod_yaml: undefined,
      }),
    ).toEqual({
      ok: true,
      traits: { daemon_logs: ['cli', 'daemon'] },
    });
  });
});

describe('defineCatalog', () => {
  it('reports every problem at once', () => {
    const bad = {
      app: 'bad app!',
      events: {
        ok_event: { description: 'fine', traits: { Bad: { type: 'boolean' } } },
        nodesc: { description: '' },
      },
      outcomes: { o: { title: 'O', results: { s: { event: 'missing', kind: 'success' } } } },
      funnels: { f: { title: 'F', steps: ['ok_event'] } },
      optOutEnv: ['lower'],
    } as unknown as CatalogInput;
    try {
      defineCatalog(bad);
      expect.unreachable();
    } catch (error) {
      expect(error).toBeInstanceOf(CatalogError);
      const problems = (error as CatalogError).problems;
      expect(problems.length).toBeGreaterThanOrEqual(7);
      expect(problems.join('\n')).toMatch(/app "bad app!"/);
      expect(problems.join('\n')).toMatch(/needs a description/);
      expect(problems.join('\n')).toMatch(/unknown event "missing"/);
      expect(problems.join('\n')).toMatch(/at least two steps/);
      expect(problems.join('\n')).toMatch(/opt-out variable "lower"/);
    }
  });

  it('refuses extra context keys that would override core context', () => {
    expect(() =>
      defineCatalog(minimal({ extraContext: { envPrefix: 'X_', keys: { mode: { type: 'boolean' } } } })),
    ).toThrow(/override core context/);
  });

  it('refuses extra context that is not boolean, integer or enum, whatever the types let through', () => {
    for (const type of ['string', 'error', 'flagList', 'number', 'duration', 'enumList', undefined]) {
      const spec = { type, maxLength: 64, values: ['a'], unit: 's' } as unknown as { type: 'boolean' };
      expect(
        () => defineCatalog(minimal({ extraContext: { envPrefix: 'X_', keys: { tier: spec } } })),
        String(type),
      ).toThrow(/extraContext\.tier: type .* is not allowed/);
    }
    expect(() =>
      defineCatalog(
        minimal({ extraContext: { envPrefix: 'X_', keys: { tier: { type: 'enum', values: ['gold'] } } } }),
      ),
    ).not.toThrow();
  });

  it('freezes the catalog', () => {
    const c = defineCatalog(minimal());
    expect(Object.isFrozen(c.input.events)).toBe(true);
    expect(() => {
      (c.input.events as Record<string, unknown>).other = {};
    }).toThrow();
  });

  it('fingerprints the collected fields, not the wording', () => {
    const base = catalogFingerprint(minimal());
    const reworded = minimal({
      events: {
        build_fail: { description: 'Other words.', traits: { error: { type: 'error', required: true } } },
      },
    });
    const widened = minimal({
      events: {
        build_fail: {
          description: 'A build failed.',
          traits: { error: { type: 'error', required: true }, cached: { type: 'boolean' } },
        },
      },
    });
    expect(catalogFingerprint(reworded)).toBe(base);
    expect(catalogFingerprint(widened)).not.toBe(base);
    expect(base).toMatch(/^[0-9a-f]{16}$/);
  });

  it('round-trips through JSON', () => {
    const json = JSON.parse(JSON.stringify(catalogToJSON(telepresence)));
    const back = catalogFromJSON(json);
    expect(back.fingerprint).toBe(telepresence.fingerprint);
    expect(back.eventNames).toEqual(telepresence.eventNames);
    expect(() => catalogFromJSON([])).toThrow(CatalogError);
  });
});
