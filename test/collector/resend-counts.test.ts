/**
 * "A resend counts once" (docs/collector.md, "Guarantees") for what the counters count of an event
 * besides its status: `clamped`, `skewed`, `dropped_by_client` (the daily counters and `/metrics`) and
 * `telemark_install_ids_pseudonymised_total`. Until 2026-11-29 they were counted for every prepared
 * event, before dedupe: each resend (a batch whose answer was lost) counted again, and a client's
 * reported losses were multiplied by its retries.
 */
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { goIndent, tpReport } from '../../packages/server/src/ingest/_metriton-fixtures.js';
import { sql } from '../../packages/server/src/store/sql.js';
import { bearer, type InProcess, ourMessage, postJson, resultStatuses, startInProcess } from './_helpers.js';

const sample = (text: string, series: string): number => {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? 0 : Number(line.slice(series.length + 1));
};

describe.each([
  ['on the ingest workers', {}],
  ['on the request thread', { ingestWorkers: 0 }],
])('a resend counts once, %s', (_name, config) => {
  let c: InProcess;
  beforeAll(async () => {
    c = await startInProcess({ config });
  });
  afterAll(async () => {
    await c?.stop();
  });

  const metrics = async () => {
    const text = await (await fetch(`${c.url}/metrics`)).text();
    return Object.fromEntries(
      [
        ['clamped', 'telemark_events_clamped_total{app="mytool"}'],
        ['skewed', 'telemark_events_skewed_total{app="mytool"}'],
        ['pseudonymised', 'telemark_install_ids_pseudonymised_total{app="mytool"}'],
        ['tpPseudonymised', 'telemark_install_ids_pseudonymised_total{app="telepresence2"}'],
        ['duplicate', 'telemark_events_total{app="mytool",status="duplicate",reason=""}'],
      ].map(([name, series]) => [name, sample(text, series!)]),
    );
  };
  const daily = async (app: string) =>
    Object.fromEntries(
      (
        await c.store.query<{ kind: string; n: unknown }>(
          sql`SELECT kind, sum(count) AS n FROM ingest_counters WHERE app = ${app} GROUP BY kind`,
        )
      ).map((r) => [r.kind, Number(r.n)]),
    );

  it('counts clamped, skewed, client-dropped and pseudonymised events of a batch sent three times once', async () => {
    const now = Date.now();
    const minutes = (n: number) => new Date(now + n * 60_000).toISOString();
    const id = `${Math.random()}`;
    const cli = (dropped: number) => ({
      ...ourMessage('x').context,
      cli: { ...ourMessage('x').context.cli, dropped },
    });
    // The client's clock is 10 minutes behind: every message is skewed. One reports 7 events lost, one
    // claims a time two days ahead (clamped), one has an e-mail address for an install id.
    const messages = [
      ourMessage(`dropped-${id}`, { timestamp: minutes(-11), context: cli(7) }),
      ourMessage(`clamped-${id}`, { timestamp: minutes(2 * 24 * 60) }),
      ourMessage(`pseudo-${id}`, { timestamp: minutes(-11), anonymousId: 'dave@example.com' }),
    ];
    const before = await metrics();
    // The same message twice in the batch, then the batch twice more (its answers lost).
    const first = await postJson(
      `${c.url}/v1/batch`,
      { sentAt: minutes(-10), batch: [...messages, messages[0]] },
      bearer(),
    );
    expect(resultStatuses(first.json)).toEqual(['accepted', 'accepted', 'accepted', 'duplicate']);
    for (let i = 0; i < 2; i++) {
      const again = await postJson(`${c.url}/v1/batch`, { sentAt: minutes(-10), batch: messages }, bearer());
      expect(resultStatuses(again.json)).toEqual(['duplicate', 'duplicate', 'duplicate']);
    }
    const after = await metrics();
    expect({
      clamped: after.clamped! - before.clamped!,
      skewed: after.skewed! - before.skewed!,
      pseudonymised: after.pseudonymised! - before.pseudonymised!,
      duplicate: after.duplicate! - before.duplicate!,
    }).toEqual({ clamped: 1, skewed: 3, pseudonymised: 1, duplicate: 7 });
    expect(await daily('mytool')).toMatchObject({
      accepted: 3,
      duplicate: 7,
      clamped: 1,
      skewed: 3,
      dropped_by_client: 7,
    });
  });

  it('adds the skewed, clamped and pseudonymised events of a request to /metrics when it is read, not per event', async () => {
    const now = Date.now();
    const minutes = (n: number) => new Date(now + n * 60_000).toISOString();
    const id = `${Math.random()}`;
    // A client whose clock is 10 minutes behind: every event skewed (the clamped one too). Until 2026-11-29
    // each was one prom-client `inc`, on the request thread (e25746a); they are tallied as statuses are.
    const messages = Array.from({ length: 20 }, (_, i) =>
      ourMessage(`many-${i}-${id}`, {
        timestamp: minutes(-11),
        ...(i < 5 ? { anonymousId: `user${i}@example.com` } : {}),
      }),
    );
    messages.push(ourMessage(`many-clamped-${id}`, { timestamp: minutes(2 * 24 * 60) }));
    const before = await metrics();
    const { metrics: m } = c.collector;
    const spies = [vi.spyOn(m.skewed, 'inc'), vi.spyOn(m.clamped, 'inc'), vi.spyOn(m.pseudonymised, 'inc')];
    try {
      const answer = await postJson(`${c.url}/v1/batch`, { sentAt: minutes(-10), batch: messages }, bearer());
      expect(resultStatuses(answer.json).every((s) => s === 'accepted')).toBe(true);
      expect(spies.map((spy) => spy.mock.calls.length)).toEqual([0, 0, 0]);
    } finally {
      for (const spy of spies) spy.mockRestore();
    }
    const after = await metrics();
    expect({
      skewed: after.skewed! - before.skewed!,
      clamped: after.clamped! - before.clamped!,
      pseudonymised: after.pseudonymised! - before.pseudonymised!,
    }).toEqual({ skewed: 21, clamped: 1, pseudonymised: 5 });
  });

  it("counts a Metriton report's pseudonymised install id once, however often it is sent", async () => {
    const before = await metrics();
    const report = goIndent(
      tpReport({ action: 'connect', trace_id: `t-${Math.random()}` }, { install_id: 'erin@example.com' }),
    );
    for (let i = 0; i < 3; i++) {
      const answered = await fetch(`${c.url}/scout`, {
        method: 'POST',
        body: report,
        headers: { 'content-type': 'application/json' },
      });
      expect(answered.status).toBe(200);
    }
    const after = await metrics();
    expect(after.tpPseudonymised! - before.tpPseudonymised!).toBe(1);
    expect(await daily('telepresence2')).toMatchObject({ accepted: 1, duplicate: 2 });
  });
});
