import { describe, expectTypeOf, it } from 'vitest';
import { telepresence } from './catalogs/telepresence.js';
import { createTelemetry, type FlushResult, type Telemetry, type TelemetryStatus } from './index.js';

const telemetry = createTelemetry({
  catalog: telepresence,
  version: '2.20.2',
  endpoint: 'http://127.0.0.1:8787',
  mode: 'cli',
});

describe('report() is typed from the catalog', () => {
  it('accepts every event with its traits', () => {
    telemetry.report('intercept_fail', { error: 'boom' });
    telemetry.report('intercept_fail', { error: new Error('boom') });
    telemetry.report('intercept_success');
    telemetry.report('Used legacy syntax', { run: true, unsupported_flags: ['--foo'] });
    telemetry.report('incluster_dns_query', { had_results: true });
    telemetry.report('connect', { time_to_connect: 1.5 });
    telemetry.report('connect');
    telemetry.report('login_success', { method: 'apikey' });
    telemetry.report('used_gather_logs', { daemon_logs: ['cli', 'kubeauth'] });
    expectTypeOf(telemetry).toEqualTypeOf<Telemetry<typeof telepresence.input>>();
    expectTypeOf(telemetry.flush).returns.resolves.toEqualTypeOf<FlushResult>();
    expectTypeOf(telemetry.status()).toEqualTypeOf<TelemetryStatus>();
  });

  it('rejects what the catalog does not allow', () => {
    // @ts-expect-error an unknown event
    telemetry.report('intercept_failed');
    // @ts-expect-error a wrong trait type
    telemetry.report('incluster_dns_query', { had_results: 'yes' });
    // @ts-expect-error a missing required trait
    telemetry.report('intercept_fail', {});
    // @ts-expect-error traits are required when a trait is
    telemetry.report('intercept_fail');
    // @ts-expect-error an extra trait
    telemetry.report('intercept_fail', { error: 'boom', cluster: 'prod' });
    // @ts-expect-error traits on an event without any
    telemetry.report('intercept_success', { extra: 1 });
    // @ts-expect-error a value outside the enum
    telemetry.report('login_success', { method: 'password' });
    // @ts-expect-error an enum list item outside the enum
    telemetry.report('used_gather_logs', { daemon_logs: ['everything'] });
  });

  it('types the event name parameter as the catalog names', () => {
    type Name = Parameters<typeof telemetry.report>[0];
    expectTypeOf<'vpn_diag_pass'>().toExtend<Name>();
    expectTypeOf<'nope'>().not.toExtend<Name>();
  });
});
