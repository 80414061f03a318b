import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import {
  ERRORS,
  type ErrorCode,
  errorMessage,
  isTelemarkError,
  noted,
  notesOf,
  rejectionMessage,
  rephrased,
  TelemarkError,
  VARIANTS,
} from './errors.js';

const docs = readFileSync(fileURLToPath(new URL('../../../docs/errors.md', import.meta.url)), 'utf8');
/** Rows of the codes table: `| \`TMK_ERR_X\` | 400 | meaning | fix |`, padded or not. */
const rows = [...docs.matchAll(/^\|\s*`(TMK_ERR_[A-Z_]+)`\s*\|\s*(\d{3})\s*\|([^|]+)\|([^|]+)\|\s*$/gm)].map(
  (m) => ({
    code: m[1] as string,
    status: Number(m[2]),
    meaning: (m[3] as string).trim(),
    fix: (m[4] as string).trim(),
  }),
);
const codes = Object.keys(ERRORS) as ErrorCode[];

describe('the error catalog', () => {
  it('gives every code its own key as .code, an HTTP status and a message', () => {
    for (const code of codes) {
      const error = new TelemarkError(code, 'detail');
      expect(error.code).toBe(code);
      expect(isTelemarkError(error)).toBe(true);
      expect(error.statusCode).toBe(ERRORS[code].status);
      expect(error.statusCode).toBeGreaterThanOrEqual(400);
      expect(error.statusCode).toBeLessThan(600);
      expect(code).toMatch(/^TMK_ERR_[A-Z_]+$/);
      expect(error.message.length).toBeGreaterThan(20);
    }
  });

  it("words a per-message rejection with the code's message, and a catalog reason with its own detail", () => {
    expect(rejectionMessage('TMK_ERR_UNSUPPORTED_CALL', '"identify"')).toBe(
      'Call type "identify" is not stored; send "track" events.',
    );
    expect(rejectionMessage('unknown_event', '"zzz" is not in the mytool catalog')).toBe(
      '"zzz" is not in the mytool catalog',
    );
    expect(rejectionMessage('toString', 'inherited names are not codes')).toBe(
      'inherited names are not codes',
    );
  });

  it('has exactly one row per code in docs/errors.md, with the same status, a meaning and a fix', () => {
    const documented = rows.map((r) => r.code);
    expect(new Set(documented).size).toBe(documented.length);
    expect([...documented].sort()).toEqual([...codes].sort());
    for (const row of rows) {
      expect(row.status, row.code).toBe(ERRORS[row.code as ErrorCode].status);
      expect(row.meaning.length, row.code).toBeGreaterThan(10);
      expect(row.fix.length, row.code).toBeGreaterThan(5);
    }
  });

  it('words a code for whoever meets it, keeping code, detail and cause; other errors pass through', () => {
    for (const [code, variants] of Object.entries(VARIANTS))
      for (const [variant, message] of Object.entries(variants))
        expect(message('detail').length, `${code}/${variant}`).toBeGreaterThan(20);
    const cause = new Error('Conflicting lock is held in /usr/bin/node (PID 42)');
    const locked = new TelemarkError(
      'TMK_ERR_STORE_LOCKED',
      '/d/telemark.duckdb, held by PID 42: telemark serve',
      {
        cause,
      },
    );
    expect(locked.message).toBe(
      'The data directory is in use by a running collector (/d/telemark.duckdb, held by PID 42: telemark serve); stop that collector first.',
    );
    expect(rephrased(locked, { TMK_ERR_STORE_LOCKED: 'serve' })).toMatchObject({
      code: 'TMK_ERR_STORE_LOCKED',
      detail: '/d/telemark.duckdb, held by PID 42: telemark serve',
      cause,
      message:
        'The data directory is in use by a running collector (/d/telemark.duckdb, held by PID 42: telemark serve); stop that collector first, or start this one with another --data.',
    });
    const other = new TelemarkError('TMK_ERR_STORE_NO_DATA', '/d');
    expect(rephrased(other, { TMK_ERR_STORE_LOCKED: 'export' })).toBe(other);
    expect(other.message).toBe(ERRORS.TMK_ERR_STORE_NO_DATA.message('/d'));
    expect(rephrased('not an error', { TMK_ERR_UNAUTHORIZED: 'cli' })).toBe('not an error');
  });

  it('calls the holder of a data directory a collector only when it is one (an export holds it too)', () => {
    const byExport = new TelemarkError(
      'TMK_ERR_STORE_LOCKED',
      '/d/telemark.duckdb, held by PID 42: telemark export',
    );
    for (const variant of ['query', 'url', 'export', 'serve'] as const) {
      const message = (rephrased(byExport, { TMK_ERR_STORE_LOCKED: variant }) as Error).message;
      expect(message, variant).toBe(
        'The data directory is in use by another telemark command (/d/telemark.duckdb, held by PID 42: telemark export); run this again once it has finished, or stop it.',
      );
    }
    // A holder nobody could name (another OS, another program) may be either: both fixes are given.
    expect(
      (
        rephrased(new TelemarkError('TMK_ERR_STORE_LOCKED', '/d/telemark.duckdb, held by PID 42'), {
          TMK_ERR_STORE_LOCKED: 'query',
        }) as Error
      ).message,
    ).toBe(
      'The data directory is in use (/d/telemark.duckdb, held by PID 42), by a running collector or an admin command such as telemark export: if it is a collector, query it with --url, or stop it first; if a command, run this again once it has finished.',
    );
  });

  it('carries notes from where an error is thrown to where it is answered, merged', () => {
    const error = noted(new TelemarkError('TMK_ERR_RATE_LIMITED', 'x'), { retryAfterMs: 1500 });
    expect(noted(error, { keptRaw: 'body' })).toBe(error);
    expect(notesOf(error)).toEqual({ retryAfterMs: 1500, keptRaw: 'body' });
    expect(notesOf(new Error('plain'))).toEqual({});
    expect(notesOf(undefined)).toEqual({});
  });

  it('gives the text of anything thrown', () => {
    expect(errorMessage(new TypeError('bad'))).toBe('bad');
    expect(errorMessage('a thrown string')).toBe('a thrown string');
    expect(errorMessage(42)).toBe('42');
    expect(errorMessage(undefined)).toBe('undefined');
  });
});
