import { parseError } from '@clickhouse/client';
import { describe, expect, it } from 'vitest';
import { resolveClickHouseOptions } from './clickhouse-options.js';
import { accessError, isUnavailableError } from './clickhouse-store.js';

const o = resolveClickHouseOptions({ url: 'http://ch:8123', user: 'ingest', database: 'tm' });
/** What `@clickhouse/client` throws for a server's answer: 18.16's text stays a plain Error. */
const answered = (body: string) => parseError(body);

/**
 * Errors of servers this machine cannot run (current versions, whose answers the client parses into a
 * `ClickHouseError` with a numeric-string `code`); 18.16's own answers run in test/clickhouse/access.test.ts.
 */
describe('ClickHouse refusals', () => {
  it('name the setting to fix, on 18.16 and current servers alike', () => {
    const cases: [string, string][] = [
      [
        'Code: 516. DB::Exception: ingest: Authentication failed: password is incorrect, or there is no user with such name. (AUTHENTICATION_FAILED) (version 24.8.4.13 (official build))',
        '--clickhouse-password',
      ],
      [
        "Code: 497. DB::Exception: ingest: Not enough privileges. To execute this query, it's necessary to have the grant CREATE DATABASE ON tm.*. (ACCESS_DENIED) (version 24.8.4.13 (official build))",
        'rights to create',
      ],
      [
        'Code: 81. DB::Exception: Database tm does not exist. (UNKNOWN_DATABASE) (version 24.8.4.13 (official build))',
        '--clickhouse-database',
      ],
      [
        'Code: 193, e.displayText() = DB::Exception: Wrong password for user ingest, e.what() = DB::Exception',
        '--clickhouse-password',
      ],
      [
        'Code: 195, e.displayText() = DB::Exception: User ingest is not allowed to connect from address 10.0.0.7, e.what() = DB::Exception',
        '<networks>',
      ],
    ];
    for (const [body, fix] of cases) {
      const refused = accessError(answered(body), o);
      expect(refused, body).toMatchObject({ code: 'TMK_ERR_STORE_ACCESS', statusCode: 503 });
      expect(refused?.message, body).toContain(fix);
      expect(refused?.message, body).toContain('http://ch:8123');
      expect(isUnavailableError(answered(body)), body).toBe(false);
    }
  });

  it('leave outages and other errors alone', () => {
    const overloaded = answered(
      'Code: 252. DB::Exception: Too many parts (300). (TOO_MANY_PARTS) (version 24.8.4.13)',
    );
    expect(accessError(overloaded, o)).toBeUndefined();
    expect(isUnavailableError(overloaded)).toBe(true);
    expect(
      accessError(answered('Code: 62, e.displayText() = DB::Exception: Syntax error'), o),
    ).toBeUndefined();
    expect(accessError(new Error('socket hang up'), o)).toBeUndefined();
  });
});
