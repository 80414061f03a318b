import { describe, expect, it } from 'vitest';
import { clickhouseLiteral, ident, join, raw, renderClickHouse, renderDuckDB, sql } from './sql.js';

describe('sql', () => {
  const app = "telepresence2' OR 1=1 --";
  const query = sql`SELECT count(*) FROM ${ident('events')} WHERE app = ${app} AND ts >= ${new Date(0)} AND event IN (${join(
    ['a', 'b'].map((e) => sql`${e}`),
  )})`;

  it('renders DuckDB with bound parameters and no value in the text', () => {
    const { text, params } = renderDuckDB(query);
    expect(text).toBe('SELECT count(*) FROM events WHERE app = $1 AND ts >= $2 AND event IN ($3, $4)');
    expect(params).toEqual([app, new Date(0), 'a', 'b']);
    expect(text).not.toContain('OR 1=1');
  });

  it('renders ClickHouse with every literal escaped', () => {
    expect(renderClickHouse(query)).toBe(
      "SELECT count(*) FROM events WHERE app = 'telepresence2\\' OR 1=1 --' AND ts >= '1970-01-01 00:00:00' AND event IN ('a', 'b')",
    );
  });

  it.each([
    ["it's", "'it\\'s'"],
    ['back\\slash', "'back\\\\slash'"],
    ['new\nline\ttab\r\0', "'new\\nline\\ttab\\r\\0'"],
    ['\x01\x1f\x7f', "'\\x01\\x1f\\x7f'"],
    ['ünïcødé 🚀', "'ünïcødé 🚀'"],
    ["\\'; DROP TABLE events; --", "'\\\\\\'; DROP TABLE events; --'"],
  ])('escapes the string %j', (input, expected) => {
    expect(clickhouseLiteral(input)).toBe(expected);
  });

  it('renders numbers, booleans, null, bigints and arrays', () => {
    expect(clickhouseLiteral(42)).toBe('42');
    expect(clickhouseLiteral(0.5)).toBe('0.5');
    expect(clickhouseLiteral(true)).toBe('1');
    expect(clickhouseLiteral(null)).toBe('NULL');
    expect(clickhouseLiteral(2n ** 60n)).toBe('1152921504606846976');
    expect(clickhouseLiteral(['a', 1])).toBe("['a', 1]");
    expect(() => clickhouseLiteral(Number.NaN)).toThrow(/non-finite/);
  });

  it('refuses identifiers that are not plain names', () => {
    expect(() => ident('events; DROP TABLE x')).toThrow(/refusing identifier/);
    expect(() => ident('"events"')).toThrow();
    expect(raw('x').strings).toEqual(['x']);
  });

  it('nests fragments and joins with separators', () => {
    const where = join([sql`a = ${1}`, sql`b = ${2}`], ' AND ');
    expect(renderDuckDB(sql`SELECT 1 WHERE ${where}`)).toEqual({
      text: 'SELECT 1 WHERE a = $1 AND b = $2',
      params: [1, 2],
    });
    expect(renderDuckDB(join([])).text).toBe('');
  });
});
