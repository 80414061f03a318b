import http from 'node:http';
import { gzipSync } from 'node:zlib';
import { afterEach, describe, expect, it } from 'vitest';
import { telepresence } from '../catalogs/telepresence.js';
import {
  createFakeCollector,
  expectEachOnce,
  expectNotReported,
  expectReported,
  type FakeCollector,
  match,
} from './index.js';

const collectors: FakeCollector[] = [];
afterEach(async () => {
  for (const c of collectors.splice(0)) await c.close();
});

function message(id: string, event: string, properties: Record<string, unknown> = {}) {
  return {
    type: 'track',
    messageId: id,
    timestamp: new Date().toISOString(),
    anonymousId: 'a',
    event,
    properties,
    context: {},
  };
}

function send(
  url: string,
  batch: unknown[],
  gzip = true,
): Promise<{
  status: number;
  body: { results: unknown[] } & Record<string, unknown>;
  headers: http.IncomingHttpHeaders;
}> {
  const raw = Buffer.from(JSON.stringify({ batch, sentAt: new Date().toISOString() }));
  const body = gzip ? gzipSync(raw) : raw;
  return new Promise((resolve, reject) => {
    const req = http.request(
      `${url}/v1/batch`,
      {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...(gzip ? { 'content-encoding': 'gzip' } : {}) },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c) => chunks.push(c));
        res.on('end', () =>
          resolve({
            status: res.statusCode ?? 0,
            body: JSON.parse(Buffer.concat(chunks).toString() || 'null'),
            headers: res.headers,
          }),
        );
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

describe('fake collector', () => {
  it('answers per message: accepted, duplicate, rejected with the catalog reason; sends control', async () => {
    const c = await createFakeCollector({ catalog: telepresence, control: { latestVersion: '3.0.0' } });
    collectors.push(c);
    expect(c.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    const first = await send(c.url, [message('1', 'intercept_success'), message('2', 'nope')]);
    expect(first.status).toBe(200);
    expect(first.body).toEqual({
      success: true,
      results: [
        { messageId: '1', status: 'accepted' },
        { messageId: '2', status: 'rejected', reason: 'unknown_event', detail: expect.any(String) },
      ],
      control: { latestVersion: '3.0.0' },
    });
    const again = await send(c.url, [message('1', 'intercept_success')], false);
    expect(again.body.results).toEqual([{ messageId: '1', status: 'duplicate' }]);
    expect(c.messages.map((m) => m.messageId)).toEqual(['1']);
    expect(c.duplicates).toBe(1);
    expect(c.requests.map((r) => r.events)).toEqual([2, 1]);
  });

  it('can fail, rate-limit, refuse large batches and hang', async () => {
    const c = await createFakeCollector();
    collectors.push(c);
    c.failNext(1, 503, { retryAfter: 7 });
    const failed = await send(c.url, [message('1', 'x')]);
    expect([failed.status, failed.headers['retry-after']]).toEqual([503, '7']);
    c.rateLimit(1, 3);
    expect((await send(c.url, [message('1', 'x')])).status).toBe(429);
    c.limitBatchEvents(1);
    expect((await send(c.url, [message('1', 'x'), message('2', 'x')])).status).toBe(413);
    expect((await send(c.url, [message('1', 'x')])).status).toBe(200);
    c.hang();
    const pending = send(c.url, [message('3', 'x')]).catch((e) => e);
    await c.waitForRequests(5, 2000);
    expect(c.openConnections).toBe(1);
    await c.close();
    collectors.pop();
    expect(await pending).toBeInstanceOf(Error);
  });

  it('waitForMessages rejects with a readable error on timeout', async () => {
    const c = await createFakeCollector();
    collectors.push(c);
    await expect(c.waitForMessages(1, 50)).rejects.toThrow('waiting for 1 messages (have 0)');
  });
});

describe('assertions', () => {
  const messages = [
    message('1', 'intercept_fail', { error: 'connection refused' }),
    message('2', 'connect', { time_to_connect: 1.5, mapped_namespaces: 2 }),
  ] as never[];

  it("expectReported matches partially, with plain values or matchers (ours or vitest's)", () => {
    expect(expectReported(messages, 'intercept_fail')).toHaveLength(1);
    expectReported(messages, 'intercept_fail', { error: match.any(String) });
    expectReported(messages, 'intercept_fail', { error: expect.stringContaining('refused') });
    expectReported(messages, 'connect', { time_to_connect: 1.5 });
    expectReported(
      messages,
      'connect',
      { time_to_connect: 1.5, mapped_namespaces: 2 },
      { exact: true, times: 1 },
    );
  });

  it('throws readable errors', () => {
    expect(() => expectReported(messages, 'login_success')).toThrow(
      /expected an event "login_success"; reported \(2\):\n {2}- intercept_fail \{"error":"connection refused"\}/,
    );
    expect(() => expectReported(messages, 'connect', { time_to_connect: match.any(String) })).toThrow(
      'expected an event "connect" with {"time_to_connect":any(String)}',
    );
    expect(() => expectReported(messages, 'connect', { time_to_connect: 1.5 }, { exact: true })).toThrow();
    expect(() => expectReported(messages, 'connect', undefined, { times: 2 })).toThrow(
      'expected 2 × "connect", found 1',
    );
    expect(() => expectNotReported(messages, 'connect')).toThrow('expected no "connect" event, found 1');
    expectNotReported(messages, 'login_success');
  });

  it('expectEachOnce finds repeats, missing and unexpected ids', () => {
    expectEachOnce(messages, ['1', '2']);
    expect(() => expectEachOnce([...messages, messages[0]] as never[])).toThrow(
      '1 message ids occur more than once',
    );
    expect(() => expectEachOnce(messages, ['1', '3'])).toThrow('1 missing (e.g. 3), 1 unexpected (e.g. 2)');
  });

  it('match.stringMatching and stringNotContaining', () => {
    expectReported(messages, 'intercept_fail', { error: match.stringMatching(/^connection/) });
    expectReported(messages, 'intercept_fail', { error: match.stringNotContaining('alice', '10.0.0.1') });
    expect(() =>
      expectReported(messages, 'intercept_fail', { error: match.stringNotContaining('refused') }),
    ).toThrow();
  });
});
