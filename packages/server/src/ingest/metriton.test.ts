import { describe, expect, it } from 'vitest';
import { resolveServeConfig } from '../config/serve-config.js';
import { rejectionMessage } from '../errors.js';
import { createEventBuilder } from '../pipeline/event-builder.js';
import {
  connectReport,
  goIndent,
  interceptFailReport,
  legacyReport,
  TP_INSTALL_ID,
  TP_TRACE_ID,
  tpReport,
  updateRoutesReport,
} from './_metriton-fixtures.js';
import { metritonMessageId, prepareMetriton } from './metriton.js';
import { UNATTRIBUTED_CHARGE, UNATTRIBUTED_LIMIT } from './prepared.js';

const config = resolveServeConfig({});
const deps = { registry: config.registry, builder: createEventBuilder() };
const receivedAt = Date.UTC(2026, 2, 1, 12);
const prepare = (report: unknown) => prepareMetriton(JSON.parse(goIndent(report)), receivedAt, deps);

describe('Metriton reports', () => {
  it('derives message ids with a pinned digest (stored ids are part of the data: dedupe across restarts)', () => {
    expect(metritonMessageId('5c3c1f7e', 'trace-1', 3, 'connect')).toBe(
      'mt-ee1871ade6f7b71ce4734d1d05e728db',
    );
  });

  it('maps base metadata to context, catalog traits to traits, and drops every other key', () => {
    const result = prepare(connectReport);
    if (result.kind !== 'prepared') throw new Error('expected prepared');
    expect(result.prepared.quarantine).toEqual([]);
    const [event] = result.prepared.events;
    expect(event).toMatchObject({
      app: 'telepresence2',
      event: 'connect',
      installId: TP_INSTALL_ID,
      sessionId: TP_TRACE_ID,
      seq: 3,
      appVersion: '2.20.2',
      mode: 'connector',
      platform: 'linux',
      arch: 'x64',
      osName: 'ubuntu',
      osVersion: '22.04.4 LTS (Jammy Jellyfish)',
      osBuild: 'unknown',
      container: false,
      wsl: 0,
      installMethod: 'website',
      newInstall: false,
      protocol: 'metriton',
      library: 'metriton',
      envClass: 'ci',
      ciVendor: 'github-actions',
      timestamp: receivedAt,
      receivedAt,
      skewMs: 0,
      traits: { time_to_connect: 2.873, mapped_namespaces: 0 },
      extra: { github_actions_integration: true },
    });
    const stored = JSON.stringify(event);
    for (const dropped of ['cluster_id', '9c3a7d0e', 'manager_version', 'install_id_error', 'alice'])
      expect(stored).not.toContain(dropped);
  });

  it('derives a stable messageId, so the same report resent is the same message', () => {
    const first = prepare(connectReport);
    const again = prepare(connectReport);
    const next = prepare({ ...connectReport, metadata: { ...connectReport.metadata, index: 4 } });
    if (first.kind !== 'prepared' || again.kind !== 'prepared' || next.kind !== 'prepared')
      throw new Error('x');
    expect(first.prepared.events[0]?.messageId).toBe(
      metritonMessageId(TP_INSTALL_ID, TP_TRACE_ID, 3, 'connect'),
    );
    expect(again.prepared.events[0]?.messageId).toBe(first.prepared.events[0]?.messageId);
    expect(next.prepared.events[0]?.messageId).not.toBe(first.prepared.events[0]?.messageId);
    expect(first.prepared.events[0]?.messageId.length).toBeLessThanOrEqual(100);
  });

  it('tells apart reports that do not name their place (no trace id, no index) by what they hold', () => {
    /** A report of `intercept_fail` with `error`, and `metadata` changed as given (undefined: left out). */
    const unplaced = (error: string, metadata: Record<string, unknown> = {}) =>
      tpReport({
        ...interceptFailReport.metadata,
        trace_id: undefined,
        index: undefined,
        error,
        ...metadata,
      });
    const idOf = (report: unknown, send = prepare) => {
      const result = send(report);
      if (result.kind !== 'prepared') throw new Error('expected prepared');
      return result.prepared.events[0]?.messageId ?? result.prepared.quarantine[0]?.messageId;
    };
    const a = idOf(unplaced('connector.CreateIntercept: a'));
    // Compact JSON, keys in another order: the same report.
    const reordered = (report: unknown) => {
      const { application, install_id, version, metadata } = report as ReturnType<typeof unplaced>;
      const backwards = Object.fromEntries(Object.entries(metadata).reverse());
      const text = JSON.stringify({ metadata: backwards, version, install_id, application });
      return prepareMetriton(JSON.parse(text), receivedAt, deps);
    };
    expect(idOf(unplaced('connector.CreateIntercept: a'), reordered)).toBe(a);
    const others = [
      unplaced('connector.CreateIntercept: b'),
      // A trace id or an index of another type, or one shared by two reports of different content.
      unplaced('connector.CreateIntercept: a', { trace_id: 7, mode: 'connector' }),
      unplaced('connector.CreateIntercept: a', { index: '2', mode: 'daemon' }),
    ];
    const ids = [a, ...others.map((r) => idOf(r))];
    expect(new Set(ids).size).toBe(4);
    for (const id of ids) expect(id).toMatch(/^mt-[0-9a-f]{32}$/);
    // A trace id that holds the separator is not taken as one: no report can pass for another by it.
    const forged = tpReport({ action: 'b', index: 1, trace_id: 'T\u00001' });
    const plain = tpReport({ action: '1\u0000b', index: 1, trace_id: 'T' });
    expect(idOf(forged)).not.toBe(idOf(plain));
  });

  it('derives an id for a report without a trace id whose values nest too deep to write as JSON', () => {
    const deep = `${'['.repeat(5_000)}1${']'.repeat(5_000)}`;
    const text = JSON.stringify(tpReport({ action: 'connect', trace_id: undefined, index: '@@' })).replace(
      '"@@"',
      deep,
    );
    const result = prepareMetriton(JSON.parse(text), receivedAt, deps);
    if (result.kind !== 'prepared') throw new Error('expected prepared');
    expect(result.prepared.events[0]?.messageId ?? result.prepared.quarantine[0]?.messageId).toMatch(
      /^mt-[0-9a-f]{32}$/,
    );
  });

  it('gives a report without a trace id the same id again from its kept form (a replay)', () => {
    // Refused (a trait of the wrong type), kept; judged again from what quarantine kept.
    const report = tpReport({
      action: 'connect',
      trace_id: undefined,
      index: undefined,
      time_to_connect: 'slow',
      cluster_id: '9c3a7d0e-5b1f-4c2a-8e6d-1f0a2b3c4d5e',
    });
    const first = prepare(report);
    if (first.kind !== 'prepared') throw new Error('expected prepared');
    const [entry] = first.prepared.quarantine;
    expect(entry?.messageId).toMatch(/^mt-/);
    const again = prepareMetriton(JSON.parse(entry?.raw ?? ''), receivedAt, deps);
    if (again.kind !== 'prepared') throw new Error('expected prepared');
    expect(again.prepared.quarantine[0]?.messageId).toBe(entry?.messageId);
  });

  it('keeps the error trait (scrubbed, fingerprinted) and drops service and cluster names around it', () => {
    const result = prepare(interceptFailReport);
    if (result.kind !== 'prepared') throw new Error('expected prepared');
    const [event] = result.prepared.events;
    expect(event?.event).toBe('intercept_fail');
    expect(Object.keys(event?.traits ?? {})).toEqual(['error']);
    expect(event?.errorText).toBe(event?.traits.error);
    expect(event?.errorFingerprint).toMatch(/^[0-9a-f]{16}$/);
    // Metriton clients send errors raw: the collector's scrubber removes the workload name.
    expect(event?.errorText).toContain('No interceptable deployment');
    expect(event?.errorText).not.toContain('echo-easy');
    expect(JSON.stringify(event?.traits)).not.toContain('9c3a7d0e');
    expect(JSON.stringify(event)).not.toContain('manager_install_id');
  });

  it('strips flag values from legacy syntax reports', () => {
    const result = prepare(legacyReport);
    if (result.kind !== 'prepared') throw new Error('expected prepared');
    expect(result.prepared.events[0]?.traits).toEqual({
      swap_deployment: true,
      run: true,
      unsupported_flags: ['--also-proxy', '--expose-foo'],
    });
  });

  it('rejects events outside the catalog into quarantine with their keys, less the identifying ones', () => {
    const result = prepare(
      tpReport({
        ...updateRoutesReport.metadata,
        cluster_id: '9c3a7d0e-1111-4b4b-8c8c-0123456789ab',
        service_name: 'billing-api',
        install_id_error: 'open /home/alice/.config/telepresence/id: permission denied',
        note: 'sent by pat.smith@initech.example',
        nested: { by: ['pat.smith@initech.example'] },
      }),
    );
    if (result.kind !== 'prepared') throw new Error('expected prepared');
    expect(result.prepared.events).toEqual([]);
    expect(result.prepared.results[0]).toMatchObject({ status: 'rejected', reason: 'unknown_event' });
    const [entry] = result.prepared.quarantine;
    expect(entry).toMatchObject({
      app: 'telepresence2',
      protocol: 'metriton',
      reason: 'unknown_event',
      event: 'update_routes',
    });
    const raw = JSON.parse(entry?.raw ?? '{}');
    expect(raw.metadata.action).toBe('update_routes');
    expect(raw.metadata.goos).toBe('linux');
    // What a later catalog may declare as traits is there for a replay…
    expect(raw.metadata.subnets).toBe(3);
    expect(raw.metadata.allow_conflicting_subnets).toBe(0);
    // …scrubbed, and without what names a cluster, a workload or a person.
    expect(raw.metadata.note).toContain('sent by');
    expect(raw.metadata.nested.by).toHaveLength(1);
    expect(entry?.raw).not.toContain('pat.smith');
    for (const gone of ['cluster_id', '9c3a7d0e', 'service_name', 'billing-api', 'install_id_error', 'alice'])
      expect(entry?.raw).not.toContain(gone);
  });

  it('keeps a trait the catalog declares even when its name is on the identifying list', () => {
    const svc = resolveServeConfig({
      apps: {
        svc: {
          allowKeyless: true,
          catalog: {
            app: 'svc',
            events: {
              svc_event: { description: 'x', traits: { service_name: { type: 'integer' } } },
            },
          },
        },
      },
    });
    const result = prepareMetriton(
      tpReport(
        { action: 'svc_event', index: 1, mode: 'cli', service_name: 'billing-api' },
        { application: 'svc' },
      ),
      receivedAt,
      { registry: svc.registry, builder: createEventBuilder() },
    );
    if (result.kind !== 'prepared') throw new Error('expected prepared');
    expect(result.prepared.quarantine[0]?.reason).toBe('invalid_type');
    expect(JSON.parse(result.prepared.quarantine[0]?.raw ?? '{}').metadata.service_name).toBe('billing-api');
  });

  it("charges a report naming an app that takes no keyless messages to the unattributed bucket, not the app's", () => {
    const keyed = resolveServeConfig({
      apps: {
        keyed: {
          writeKeys: ['wk_keyed_0123456789'],
          latestVersion: '9.9.9',
          catalog: { app: 'keyed', events: { connect: { description: 'x' } } },
        },
      },
    });
    const result = prepareMetriton(
      tpReport({ action: 'connect', index: 1, trace_id: 't' }, { application: 'keyed' }),
      receivedAt,
      { registry: keyed.registry, builder: createEventBuilder() },
    );
    if (result.kind !== 'prepared') throw new Error('expected prepared');
    const { prepared } = result;
    // Recorded as no app's, as a keyless Segment message naming it is (until 2026-11-29 as the app's).
    expect(prepared.quarantine.map((q) => [q.app, q.reason])).toEqual([['', 'TMK_ERR_MISSING_WRITE_KEY']]);
    expect(prepared.counters.toArray()).toEqual([
      expect.objectContaining({ app: '', kind: 'rejected', reason: 'TMK_ERR_MISSING_WRITE_KEY', count: 1 }),
    ]);
    // Its message names the operator's fix: a Metriton client cannot send a key.
    const r = prepared.results[0];
    expect(rejectionMessage(r?.reason ?? '', r?.detail ?? '')).toBe(
      'App "keyed" takes no messages without a write key, and Metriton reports carry none; to accept them, set apps.keyed.allowKeyless: true in the collector\'s config.',
    );
    // Entries kept before, with the detail's earlier wording, are shown the same fix.
    expect(rejectionMessage('TMK_ERR_MISSING_WRITE_KEY', 'app "keyed" (Metriton reports carry no key)')).toBe(
      rejectionMessage(r?.reason ?? '', r?.detail ?? ''),
    );
    // The shared bucket of messages no app answers for (100/s), as a keyless Segment message naming it.
    expect(prepared.charges).toEqual([
      { key: UNATTRIBUTED_CHARGE, limit: UNATTRIBUTED_LIMIT, cost: 1, app: '' },
    ]);
    // No app answers for it: its answer carries no control block (latest version, notices, kill switch).
    expect(prepared.app).toBeUndefined();
    expect(result.app).toBeUndefined();
  });

  it('refuses a report larger than the message limit, as sent, and a lone surrogate in install_id', () => {
    const limits = { maxEventBytes: 2_000 };
    const report = tpReport({ action: 'connect', index: 1, mode: 'cli' });
    // The limit is on the report as sent (Telepresence indents it), not on its compact form.
    const indented = prepareMetriton(report, receivedAt, { ...deps, limits }, 2_001);
    const compact = prepareMetriton(report, receivedAt, { ...deps, limits }, 2_000);
    if (indented.kind !== 'prepared' || compact.kind !== 'prepared') throw new Error('expected prepared');
    expect(indented.prepared.results[0]).toMatchObject({
      status: 'rejected',
      reason: 'TMK_ERR_EVENT_TOO_LARGE',
      detail: '2000 bytes (it was 2001)',
    });
    expect(indented.prepared.quarantine[0]?.event).toBe('connect');
    expect(compact.prepared.events).toHaveLength(1);
    for (const installId of ['x\ud800', 'x\udfff']) {
      const result = prepare(
        tpReport({ action: 'connect', index: 1, mode: 'cli' }, { install_id: installId }),
      );
      if (result.kind !== 'prepared') throw new Error('expected prepared');
      expect(result.prepared.results[0]).toMatchObject({
        status: 'rejected',
        reason: 'TMK_ERR_INVALID_MESSAGE',
      });
      expect(result.prepared.results[0]?.detail).toContain('well-formed');
    }
  });

  it('scrubs the kept traits of a rejected report before it goes to quarantine', () => {
    const result = prepare(
      tpReport({
        action: 'login_failure',
        index: 9,
        mode: 'cli',
        method: 'sso',
        error: 'oauth2: cannot fetch token for pat.smith@initech.example from 10.1.2.3',
      }),
    );
    if (result.kind !== 'prepared') throw new Error('expected prepared');
    const [entry] = result.prepared.quarantine;
    expect(entry?.reason).toBe('invalid_enum');
    expect(entry?.raw).toContain('oauth2: cannot fetch token');
    expect(entry?.raw).not.toContain('pat.smith');
    expect(entry?.raw).not.toContain('10.1.2.3');
  });

  it('answers an unknown application as Metriton did, keeping the report without its extra keys', () => {
    const result = prepare(
      tpReport({ action: 'test', sha: 'abc', actor: 'alice' }, { application: 'telepresence-tests' }),
    );
    expect(result.kind).toBe('unknown_app');
    if (result.kind !== 'unknown_app') return;
    expect(result.quarantine.reason).toBe('TMK_ERR_UNKNOWN_APP');
    expect(result.quarantine.raw).not.toContain('alice');
  });

  it('maps Windows and WSL, test modes and dev versions', () => {
    const result = prepare(
      tpReport(
        {
          action: 'vpn_diag_pass',
          index: 1,
          mode: 'go-test',
          goos: 'windows',
          goarch: 'arm64',
          os_wsl: true,
        },
        { version: 'v0.0.0-devel' },
      ),
    );
    if (result.kind !== 'prepared') throw new Error('expected prepared');
    expect(result.prepared.events[0]).toMatchObject({
      platform: 'win32',
      arch: 'arm64',
      wsl: 2,
      envClass: 'test',
      appVersion: '0.0.0-devel',
    });
  });

  it('rejects malformed reports with a reason, never throwing', () => {
    for (const body of [
      null,
      [],
      'x',
      {},
      { application: 'telepresence2' },
      tpReport({ action: 7 }),
      tpReport({ action: 'connect' }, { install_id: '' }),
    ]) {
      const result = prepareMetriton(body, receivedAt, deps);
      if (result.kind === 'prepared') {
        expect(result.prepared.events).toEqual([]);
        expect(result.prepared.results[0]?.status).toBe('rejected');
      }
    }
  });
});
