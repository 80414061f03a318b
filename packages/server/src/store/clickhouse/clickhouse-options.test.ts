import { describe, expect, it } from 'vitest';
import { resolveClickHouseOptions } from './clickhouse-options.js';

describe('resolveClickHouseOptions', () => {
  it('refuses a user or password inside a URL, for the store itself as for the collector config', () => {
    const refusal = (options: Parameters<typeof resolveClickHouseOptions>[0]) => {
      try {
        resolveClickHouseOptions(options);
      } catch (error) {
        return String((error as Error).message);
      }
      return '';
    };
    const url = refusal({ url: 'https://ops:s3cret@ch.example:8443' });
    expect(url).toContain('url: must not carry a user or password');
    expect(url).not.toContain('s3cret');
    expect(
      refusal({
        url: 'http://127.0.0.1:8123',
        cluster: { name: 'c', nodes: ['http://127.0.0.1:8123', 'http://u@127.0.0.2:8123'] },
      }),
    ).toContain('cluster.nodes.1: must not carry a user or password');
    expect(refusal({ url: 'http://127.0.0.1:8123', user: 'ops', password: 's3cret' })).toBe('');
  });

  it('gives direct writes a deadline of their own, within the request timeout', () => {
    const url = 'http://127.0.0.1:8123';
    expect(resolveClickHouseOptions({ url })).toMatchObject({
      requestTimeoutMs: 60_000,
      insertTimeoutMs: 5_000,
    });
    // A shorter request timeout lowers the default deadline with it: it is the longer wait either way.
    expect(resolveClickHouseOptions({ url, requestTimeoutMs: 3_000 })).toMatchObject({
      insertTimeoutMs: 3_000,
    });
    expect(resolveClickHouseOptions({ url, insertTimeoutMs: 750 })).toMatchObject({ insertTimeoutMs: 750 });
    expect(() => resolveClickHouseOptions({ url, insertTimeoutMs: 90_000 })).toThrow(
      'clickhouse.insertTimeoutMs: 90000 ms is longer than clickhouse.requestTimeoutMs (60000 ms, the default)',
    );
  });
});
