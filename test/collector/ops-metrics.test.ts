/**
 * What an operator scrapes and probes: every refusal shows in `/metrics`, including the ones Node's HTTP
 * server answers before any route.
 */
import { connect } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sql } from '../../packages/server/src/store/sql.js';
import {
  bearer,
  type InProcess,
  ourMessage,
  postJson,
  rawExchange,
  rawRequest,
  startInProcess,
} from './_helpers.js';

/** A sample's value in a `/metrics` text (0 when the series is not there yet). */
const sample = (text: string, series: string): number => {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? 0 : Number(line.slice(series.length + 1));
};

const scrape = async (url: string): Promise<string> => (await fetch(`${url}/metrics`)).text();

describe('refusals in /metrics', () => {
  let c: InProcess;
  beforeAll(async () => {
    c = await startInProcess({ config: { timeouts: { headersMs: 300, bodyMs: 300 } } });
  });
  afterAll(async () => {
    await c.stop();
  });

  it("exports every registered app's accepted and duplicate series before the first event", async () => {
    // Prometheus takes a series' first sample as its baseline: duplicates that arrive before the series
    // exists would never show in increase() or rate().
    const fresh = await startInProcess();
    try {
      const text = await scrape(fresh.url);
      for (const app of ['mytool', 'telepresence2'])
        for (const status of ['accepted', 'duplicate'])
          expect(text).toContain(`telemark_events_total{app="${app}",status="${status}",reason=""} 0\n`);
      expect(text).toContain('telemark_events_clamped_total{app="mytool"} 0\n');
      expect(text).toContain('telemark_events_skewed_total{app="mytool"} 0\n');
      // A store's first failed commit shows in increase() only if its series was there before it.
      for (const result of ['ok', 'error'])
        expect(text).toContain(`telemark_commit_duration_seconds_count{result="${result}"} 0\n`);
    } finally {
      await fresh.stop();
    }
  });

  it('stores a time more than 23 h ahead as received and a skewed clock corrected, and counts both', async () => {
    const clamped = 'telemark_events_clamped_total{app="mytool"}';
    const skewed = 'telemark_events_skewed_total{app="mytool"}';
    const before = await scrape(c.url);
    const now = Date.now();
    const hour = 3_600_000;
    const answer = await postJson(
      `${c.url}/v1/batch`,
      {
        // The client's clock runs an hour fast: it sent at now + 1 h, the event happened 10 s before that.
        sentAt: new Date(now + hour).toISOString(),
        batch: [
          ourMessage('clock-fast', { timestamp: new Date(now + hour - 10_000).toISOString() }),
          ourMessage('two-days-ahead', { timestamp: new Date(now + 48 * hour).toISOString() }),
        ],
      },
      bearer(),
    );
    expect(answer.status).toBe(200);
    const after = await scrape(c.url);
    expect(sample(after, clamped) - sample(before, clamped)).toBe(1);
    expect(sample(after, skewed) - sample(before, skewed)).toBeGreaterThanOrEqual(1);
    const rows = await c.store.query<{ message_id: string; ms: number; received: number }>(
      sql`SELECT message_id, epoch_ms(ts) AS ms, epoch_ms(received_at) AS received FROM events
          WHERE message_id IN ('clock-fast', 'two-days-ahead') ORDER BY message_id`,
    );
    const [fast, ahead] = rows.map((r) => ({
      id: r.message_id,
      at: Number(r.ms),
      received: Number(r.received),
    }));
    // Corrected: about 10 s before it was received, not an hour ahead.
    expect(fast?.id).toBe('clock-fast');
    expect(fast!.received - fast!.at).toBeGreaterThan(5_000);
    expect(fast!.received - fast!.at).toBeLessThan(60_000);
    expect(ahead).toMatchObject({ id: 'two-days-ahead', at: ahead?.received });
  });

  it('counts requests the HTTP server refuses before any route (bad framing, request timeout)', async () => {
    const badHttp = 'telemark_requests_rejected_total{route="",code="TMK_ERR_BAD_HTTP"}';
    const timeout = 'telemark_requests_rejected_total{route="",code="TMK_ERR_REQUEST_TIMEOUT"}';
    const before = await scrape(c.url);
    const framing = await rawExchange(
      c.url,
      'POST /v1/batch HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n{}',
    );
    expect(framing).toMatch(/^HTTP\/1.1 400 [\s\S]*TMK_ERR_BAD_HTTP/);
    // Headers that never end: answered 408 once the request timeout runs out.
    const stalled = await rawExchange(c.url, 'POST /v1/batch HTTP/1.1\r\nHost: x\r\n');
    expect(stalled).toMatch(/^HTTP\/1.1 408 [\s\S]*TMK_ERR_REQUEST_TIMEOUT/);
    const after = await scrape(c.url);
    expect(sample(after, badHttp) - sample(before, badHttp)).toBe(1);
    expect(sample(after, timeout) - sample(before, timeout)).toBe(1);
  });

  it('counts a request whose client closed its side mid-body once, on its route, not also as bad HTTP', async () => {
    const badHttp = 'telemark_requests_rejected_total{route="",code="TMK_ERR_BAD_HTTP"}';
    const cut = 'telemark_requests_rejected_total{route="batch",code="TMK_ERR_BODY_INCOMPLETE"}';
    const before = await scrape(c.url);
    const { hostname, port } = new URL(c.url);
    const socket = connect(Number(port), hostname);
    socket.on('error', () => undefined);
    socket.resume();
    socket.write(
      rawRequest('/v1/batch', {
        headers: { ...bearer(), 'Content-Type': 'application/json' },
        body: '{"batch":[',
        contentLength: 100,
      }),
    );
    // The route has the request (its body being read) before the client ends its side.
    while (!/telemark_ingest_requests_in_flight 1\n/.test(await scrape(c.url)))
      await new Promise((r) => setTimeout(r, 10));
    socket.end();
    let after = await scrape(c.url);
    while (sample(after, cut) === sample(before, cut)) {
      await new Promise((r) => setTimeout(r, 10));
      after = await scrape(c.url);
    }
    expect(sample(after, cut) - sample(before, cut)).toBe(1);
    // Node's parser reported the early end too (HPE_INVALID_EOF_STATE): counted there, it was counted twice.
    expect(sample(after, badHttp) - sample(before, badHttp)).toBe(0);
    socket.destroy();
  });
});
