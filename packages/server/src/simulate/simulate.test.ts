import { type Catalog, defineCatalog, validateEvent } from 'telemark';
import { telepresence } from 'telemark/catalogs/telepresence';
import type { WireMessage } from 'telemark/wire';
import { describe, expect, it } from 'vitest';
import { createFleet } from './engine.js';
import { retryAfterMs } from './http-sink.js';
import { scenarioFor, simulate } from './index.js';
import { createRng } from './prng.js';
import { createProgressReporter } from './progress.js';
import { compareVersions } from './releases.js';
import { TELEPRESENCE_REGRESSED_VERSION, TELEPRESENCE_REGRESSION_MARKER } from './telepresence.js';

const END_AT = Date.UTC(2026, 10, 2);
const tp = telepresence as unknown as Catalog;

/** One message with the times of the delivery that carried it. */
interface SimEvent {
  readonly message: WireMessage;
  readonly sentAt: number;
  readonly receivedAt: number;
}

function generate(catalog: Catalog, seed: number, installs: number, days: number, intensity = 1): SimEvent[] {
  const fleet = createFleet(scenarioFor(catalog), {
    seed,
    installs,
    days,
    endAt: END_AT,
    intensity,
    catalogFingerprint: catalog.fingerprint,
    libraryVersion: '0.1.0',
  });
  const events: SimEvent[] = [];
  for (let day = 0; day < days; day++)
    for (const d of fleet.day(day))
      for (const message of d.messages) events.push({ message, sentAt: d.sentAt, receivedAt: d.receivedAt });
  return events;
}

const share = (events: readonly SimEvent[], test: (e: SimEvent) => boolean): number =>
  events.filter(test).length / events.length;

describe('prng', () => {
  it('is reproducible per seed and stream, and streams differ', () => {
    const a = createRng(7, 1, 2);
    const b = createRng(7, 1, 2);
    const c = createRng(7, 1, 3);
    const seqA = Array.from({ length: 20 }, () => a.next());
    expect(Array.from({ length: 20 }, () => b.next())).toEqual(seqA);
    expect(Array.from({ length: 20 }, () => c.next())).not.toEqual(seqA);
    expect(createRng(1).uuid()).toMatch(
      /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/,
    );
  });

  it('draws from its distributions with the right centre', () => {
    const rng = createRng(3);
    const n = 20_000;
    let poisson = 0;
    let uniform = 0;
    const logs: number[] = [];
    for (let i = 0; i < n; i++) {
      poisson += rng.poisson(4);
      uniform += rng.next();
      logs.push(rng.logNormal(2.5, 0.6));
    }
    expect(poisson / n).toBeCloseTo(4, 1);
    expect(uniform / n).toBeCloseTo(0.5, 1);
    logs.sort((x, y) => x - y);
    expect(logs[n / 2]).toBeGreaterThan(2.3);
    expect(logs[n / 2]).toBeLessThan(2.7);
  });
});

describe('versions', () => {
  it('orders numerically, pre-releases first', () => {
    expect(compareVersions('2.10.0', '2.9.9')).toBeGreaterThan(0);
    expect(compareVersions('2.21.0', '2.21.0')).toBe(0);
    expect(compareVersions('2.21.0-rc.1', '2.21.0')).toBeLessThan(0);
  });
});

describe('fleet (Telepresence scenario)', () => {
  const events = generate(tp, 42, 400, 45);

  it('is deterministic for a seed, and another seed gives other events', () => {
    const again = generate(tp, 42, 400, 45);
    expect(again.length).toBe(events.length);
    expect(again.map((e) => e.message)).toEqual(events.map((e) => e.message));
    const other = generate(tp, 43, 400, 45);
    const ids = new Set(events.map((e) => e.message.messageId));
    expect(other.filter((e) => ids.has(e.message.messageId))).toHaveLength(0);
    expect(other.length).not.toBe(events.length);
  });

  it('gives every message a unique id, and every event passes the catalog', () => {
    expect(new Set(events.map((e) => e.message.messageId)).size).toBe(events.length);
    const bad = events
      .map((e) => ({
        event: e.message.event,
        result: validateEvent(tp, e.message.event, e.message.properties),
      }))
      .filter((r) => !r.result.ok);
    expect(bad.slice(0, 3)).toEqual([]);
  });

  it('uses every event of the catalog', () => {
    const seen = new Set(events.map((e) => e.message.event));
    expect([...tp.eventNames].filter((name) => !seen.has(name))).toEqual([]);
  });

  it('keeps events inside the period, in per-session order', () => {
    const start = END_AT - 45 * 86_400_000;
    const times = events.map((e) => Date.parse(e.message.timestamp) - skewOf(e));
    expect(Math.min(...times)).toBeGreaterThanOrEqual(start);
    expect(Math.max(...times)).toBeLessThan(END_AT);
    const lastSeq = new Map<string, number>();
    for (const e of events) {
      const { sessionId, seq } = e.message.context.cli;
      expect(seq).toBe((lastSeq.get(sessionId) ?? 0) + 1);
      lastSeq.set(sessionId, seq);
    }
  });

  it('has a macOS majority, then Linux, Windows and WSL2; arm64 dominates macOS', () => {
    const installs = new Map(events.map((e) => [e.message.anonymousId, e.message.context] as const));
    const contexts = [...installs.values()];
    const platformShare = (p: string): number =>
      contexts.filter((c) => c.cli.platform === p).length / contexts.length;
    expect(platformShare('darwin')).toBeGreaterThan(0.4);
    expect(platformShare('linux')).toBeGreaterThan(platformShare('win32'));
    expect(platformShare('win32')).toBeGreaterThan(0.04);
    expect(contexts.some((c) => c.cli.wsl === 2)).toBe(true);
    const macs = contexts.filter((c) => c.cli.platform === 'darwin');
    expect(macs.filter((c) => c.cli.arch === 'arm64').length / macs.length).toBeGreaterThan(0.6);
    expect(new Set(contexts.map((c) => c.os.name))).toContain('Microsoft Windows 11 Pro');
  });

  it('has CI runners (GitHub Actions and GitLab) with a real but minor share', () => {
    const ci = share(events, (e) => e.message.context.cli.envClass === 'ci');
    expect(ci).toBeGreaterThan(0.03);
    expect(ci).toBeLessThan(0.35);
    const vendors = new Set(events.map((e) => e.message.context.cli.ciVendor).filter(Boolean));
    expect(vendors).toEqual(new Set(['github_actions', 'gitlab']));
  });

  it('has a connect funnel with drop-offs at each step', () => {
    const count = (name: string): number => events.filter((e) => e.message.event === name).length;
    const connect = count('connect');
    const connecting = count('connecting_traffic_manager');
    const finished = count('finished_connecting_traffic_manager');
    expect(connecting / connect).toBeGreaterThan(0.75);
    expect(connecting / connect).toBeLessThan(0.98);
    expect(finished / connecting).toBeGreaterThan(0.8);
    expect(finished / connecting).toBeLessThan(0.99);
  });

  it('ramps up the regressed release, which fails intercepts with a new error', () => {
    const versionsOfLastWeek = events
      .filter((e) => Date.parse(e.message.timestamp) > END_AT - 7 * 86_400_000)
      .map((e) => e.message.context.app.version);
    const newest = versionsOfLastWeek.filter((v) => v === TELEPRESENCE_REGRESSED_VERSION).length;
    expect(newest / versionsOfLastWeek.length).toBeGreaterThan(0.1);
    expect(newest / versionsOfLastWeek.length).toBeLessThan(0.9);

    const failRate = (regressed: boolean): number => {
      const intercepts = events.filter(
        (e) =>
          e.message.event.startsWith('intercept_') &&
          (e.message.context.app.version === TELEPRESENCE_REGRESSED_VERSION) === regressed,
      );
      return intercepts.filter((e) => e.message.event === 'intercept_fail').length / intercepts.length;
    };
    expect(failRate(true)).toBeGreaterThan(failRate(false) * 1.8);
    const marked = events.filter((e) =>
      String(e.message.properties.error ?? '').includes(TELEPRESENCE_REGRESSION_MARKER),
    );
    expect(marked.length).toBeGreaterThan(0);
    expect(marked.every((e) => e.message.context.app.version === TELEPRESENCE_REGRESSED_VERSION)).toBe(true);
  });

  it('puts identifying details into error strings for the scrubber to remove', () => {
    const errors = events
      .map((e) => e.message.properties.error)
      .filter((x): x is string => typeof x === 'string');
    expect(errors.some((t) => /\/Users\/[a-z]/.test(t) || /\/home\/[a-z]/.test(t))).toBe(true);
    expect(errors.some((t) => /\b10\.\d+\.\d+\.\d+\b|\b172\.\d+\.\d+\.\d+\b/.test(t))).toBe(true);
    expect(errors.some((t) => /@[a-z]+\.com/.test(t))).toBe(true);
  });

  it('has a weekday rhythm and installs that churn or arrive', () => {
    const byWeekday = new Array(7).fill(0) as number[];
    for (const e of events)
      if (e.message.context.cli.envClass === 'interactive') {
        const weekday = new Date(e.message.timestamp).getUTCDay();
        byWeekday[weekday] = (byWeekday[weekday] ?? 0) + 1;
      }
    const weekday = (byWeekday[2]! + byWeekday[3]! + byWeekday[4]!) / 3;
    const weekend = (byWeekday[0]! + byWeekday[6]!) / 2;
    expect(weekend).toBeLessThan(weekday * 0.5);
    expect(events.some((e) => e.message.context.cli.newInstall === true)).toBe(true);
    const firstSeen = new Map<string, number>();
    const lastSeen = new Map<string, number>();
    for (const e of events) {
      const t = Date.parse(e.message.timestamp);
      if (!firstSeen.has(e.message.anonymousId)) firstSeen.set(e.message.anonymousId, t);
      lastSeen.set(e.message.anonymousId, t);
    }
    const mid = END_AT - 22 * 86_400_000;
    expect([...lastSeen.values()].filter((t) => t < mid).length).toBeGreaterThan(10);
    expect([...firstSeen.values()].filter((t) => t > mid).length).toBeGreaterThan(10);
  });

  it('scales with intensity', () => {
    const doubled = generate(tp, 42, 400, 45, 2);
    expect(doubled.length / events.length).toBeGreaterThan(1.6);
    expect(doubled.length / events.length).toBeLessThan(2.4);
  });
});

function skewOf(e: SimEvent): number {
  // The message carries client-clock times; sentAt − receivedAt exposes the install's skew (± network time).
  const skew = e.sentAt - e.receivedAt;
  return Math.abs(skew) < 1000 ? 0 : skew;
}

describe('fleet (generic scenario, any catalog)', () => {
  const catalog = defineCatalog({
    app: 'widget',
    events: {
      build_started: {
        description: 'A build started.',
        traits: { target: { type: 'enum', values: ['dev', 'prod'] } },
      },
      build_ok: { description: 'A build finished.', traits: { seconds: { type: 'duration', unit: 's' } } },
      build_failed: { description: 'A build failed.', traits: { error: { type: 'error', required: true } } },
      deploy: {
        description: 'Deployed.',
        traits: {
          replicas: { type: 'integer', max: 50 },
          regions: { type: 'enumList', values: ['eu', 'us'] },
        },
      },
      doctor: {
        description: 'Ran doctor.',
        traits: {
          ok: { type: 'boolean', required: true },
          flags: { type: 'flagList' },
          note: { type: 'string', maxLength: 40 },
        },
      },
    },
    outcomes: {
      build: {
        title: 'Builds',
        results: {
          ok: { event: 'build_ok', kind: 'success' },
          failed: { event: 'build_failed', kind: 'failure' },
        },
      },
      doctor: {
        title: 'Doctor',
        results: {
          healthy: { event: 'doctor', where: { ok: true }, kind: 'success' },
          sick: { event: 'doctor', where: { ok: false }, kind: 'failure' },
        },
      },
    },
    funnels: { ship: { title: 'Ship', steps: ['build_started', 'build_ok', 'deploy'] } },
  } as const) as unknown as Catalog;
  const events = generate(catalog, 5, 150, 30);

  it('produces valid events of every kind from the catalog alone', () => {
    expect(events.length).toBeGreaterThan(1000);
    const invalid = events.filter((e) => !validateEvent(catalog, e.message.event, e.message.properties).ok);
    expect(invalid.map((e) => e.message)).toEqual([]);
    expect(new Set(events.map((e) => e.message.event))).toEqual(new Set(catalog.eventNames));
    expect(new Set(events.map((e) => e.message.context.app.name))).toEqual(new Set(['widget']));
    expect(events.some((e) => e.message.event === 'doctor' && e.message.properties.ok === false)).toBe(true);
  });
});

describe('simulate() options', () => {
  it('reports every bad option at once', async () => {
    await expect(
      simulate({ app: 'telepresence2', installs: 0, days: -1, seed: 1.5, target: { url: 'ftp://x' } }),
    ).rejects.toMatchObject({
      code: 'TMK_ERR_SIMULATE_OPTIONS',
      message: expect.stringMatching(/installs.*days.*seed.*target\.url/s),
    });
    await expect(
      simulate({ app: 'nope', installs: 1, days: 1, seed: 1, target: { url: 'http://127.0.0.1:1' } }),
    ).rejects.toMatchObject({
      code: 'TMK_ERR_SIMULATE_OPTIONS',
      message: expect.stringContaining('--catalog'),
    });
  });

  it('reads Retry-After as seconds or a date', () => {
    expect(retryAfterMs('2', 100)).toBe(2000);
    expect(retryAfterMs(null, 100)).toBe(100);
    expect(retryAfterMs('soon', 100)).toBe(100);
    const at = new Date(Date.now() + 3000).toUTCString();
    expect(retryAfterMs(at, 100)).toBeGreaterThan(1000);
  });
});

describe('progress on stderr', () => {
  const stats = (daysDone: number) => ({
    daysDone,
    days: 10,
    generated: daysDone * 1000,
    delivered: daysDone * 1000,
  });

  it('redraws a bar in place on a terminal', () => {
    let out = '';
    let clock = 0;
    const progress = createProgressReporter(
      { isTTY: true, columns: 100, write: (t) => (out += t) },
      () => clock,
    );
    progress.update(stats(5));
    clock += 1000;
    progress.update(stats(6));
    progress.done(stats(10));
    expect(out.split('\r').length).toBe(4);
    expect(out).toContain(' 50% day 5/10');
    expect(out).toMatch(/\[█+\] 100% day 10\/10 · 10,000 events delivered/);
    expect(out.endsWith('\n')).toBe(true);
  });

  it('prints plain lines, at most one every few seconds, when not a terminal', () => {
    const lines: string[] = [];
    let clock = 0;
    const progress = createProgressReporter({ isTTY: false, write: (t) => lines.push(t) }, () => clock);
    for (let day = 1; day <= 9; day++) {
      clock += 1000;
      progress.update(stats(day));
    }
    progress.done(stats(10));
    expect(lines.every((l) => l.startsWith('simulate: day ') && l.endsWith('\n') && !l.includes('\r'))).toBe(
      true,
    );
    expect(lines.length).toBeLessThanOrEqual(4);
    expect(lines.at(-1)).toContain('day 10/10');
  });
});
