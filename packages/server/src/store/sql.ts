/**
 * SQL built from code, never from request strings. Values always travel separately from the text:
 * DuckDB binds them as `$n` parameters; ClickHouse 18.16 has no server-side parameters, so its renderer
 * escapes each literal through `clickhouseLiteral`, the one tested function that does so.
 *
 * Identifiers can only come from `ident()`, which accepts a fixed pattern — never user input.
 */

export type SqlValue = string | number | boolean | null | bigint | Date | readonly (string | number)[];

const SQL = Symbol('sql');

export interface Sql {
  readonly [SQL]: true;
  readonly strings: readonly string[];
  readonly values: readonly (SqlValue | Sql)[];
}

const isSql = (v: unknown): v is Sql => typeof v === 'object' && v !== null && (v as Sql)[SQL] === true;

/** `sql\`SELECT count(*) FROM events WHERE app = ${app}\`` — interpolations are values or nested `Sql`. */
export function sql(strings: TemplateStringsArray | readonly string[], ...values: (SqlValue | Sql)[]): Sql {
  return { [SQL]: true, strings: [...strings], values };
}

/** Verbatim SQL text. Only for text written in this code base (dialect snippets), never for input. */
export function raw(text: string): Sql {
  return sql([text]);
}

const IDENT = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** A column or table name from a fixed list in code. Throws on anything else. */
export function ident(name: string): Sql {
  if (!IDENT.test(name)) throw new Error(`refusing identifier ${JSON.stringify(name)}`);
  return raw(name);
}

export function join(parts: readonly Sql[], separator = ', '): Sql {
  if (parts.length === 0) return raw('');
  return sql(['', ...parts.slice(1).map(() => separator), ''], ...parts);
}

export const empty: Sql = raw('');

interface Rendered {
  readonly text: string;
  readonly params: SqlValue[];
}

function walk(query: Sql, onValue: (value: SqlValue) => string): string {
  let text = query.strings[0] ?? '';
  query.values.forEach((value, i) => {
    text += isSql(value) ? walk(value, onValue) : onValue(value);
    text += query.strings[i + 1] ?? '';
  });
  return text;
}

/** DuckDB: `$1, $2…` placeholders and a parameter list. */
export function renderDuckDB(query: Sql): Rendered {
  const params: SqlValue[] = [];
  const text = walk(query, (value) => {
    params.push(value);
    return `$${params.length}`;
  });
  return { text, params };
}

/**
 * One literal in ClickHouse syntax. Strings are single-quoted with backslash escapes for `\` and `'`
 * and every control character (ClickHouse string literals interpret backslash escapes).
 */
export function clickhouseLiteral(value: SqlValue): string {
  if (value === null) return 'NULL';
  if (typeof value === 'boolean') return value ? '1' : '0';
  if (typeof value === 'bigint') return value.toString();
  if (typeof value === 'number') {
    if (!Number.isFinite(value)) throw new Error(`refusing non-finite number ${value}`);
    return Number.isInteger(value) ? value.toString() : value.toPrecision(17).replace(/\.?0+$/, '');
  }
  if (value instanceof Date) return clickhouseLiteral(value.toISOString().slice(0, 19).replace('T', ' '));
  if (Array.isArray(value)) return `[${value.map((v) => clickhouseLiteral(v)).join(', ')}]`;
  const escaped = String(value).replace(/[\\'\x00-\x1f\x7f]/g, (ch) => {
    switch (ch) {
      case '\\':
        return '\\\\';
      case "'":
        return "\\'";
      case '\n':
        return '\\n';
      case '\r':
        return '\\r';
      case '\t':
        return '\\t';
      case '\0':
        return '\\0';
      default:
        return `\\x${ch.charCodeAt(0).toString(16).padStart(2, '0')}`;
    }
  });
  return `'${escaped}'`;
}

/** ClickHouse: the full text with every value escaped inline. */
export function renderClickHouse(query: Sql): string {
  return walk(query, clickhouseLiteral);
}
