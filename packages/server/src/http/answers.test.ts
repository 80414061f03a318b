import { describe, expect, it } from 'vitest';
import { noted, TelemarkError } from '../errors.js';
import type { GroupCommitter } from '../pipeline/group-commit.js';
import { createRefusals } from './answers.js';
import { createCollectorMetrics } from './metrics.js';

/** A logger that keeps its lines: level, fields and message. */
function recordingLog() {
  const lines: { level: string; fields: Record<string, unknown>; msg: string }[] = [];
  const at = (level: string) => (fields: object, msg: string) =>
    lines.push({ level, fields: fields as Record<string, unknown>, msg });
  return { lines, log: { error: at('error'), debug: at('debug') } };
}

const refusals = () =>
  createRefusals({
    metrics: createCollectorMetrics(),
    committer: { count: () => undefined } as unknown as GroupCommitter,
    now: () => 0,
  });

describe('createRefusals', () => {
  it('logs an unexpected error once, at error, with its TMK_ERR code, on an ingest route or not', () => {
    const refuse = refusals();
    for (const route of ['batch', undefined]) {
      const { lines, log } = recordingLog();
      const answer = refuse(new Error('boom'), { route, contentType: undefined, bodyRead: true, log });
      expect(answer.status).toBe(500);
      expect(lines.map((l) => [l.level, l.fields.code])).toEqual([['error', 'TMK_ERR_INTERNAL']]);
      expect(lines[0]?.fields.err).toMatchObject({ message: 'boom' });
    }
  });

  it("logs a server-side refusal at error with its code, and a client's or a transient one at debug", () => {
    const refuse = refusals();
    const cases: [TelemarkError, string][] = [
      [new TelemarkError('TMK_ERR_INGEST_WORKER', 'x'), 'debug'],
      [new TelemarkError('TMK_ERR_BODY_UNPARSEABLE', 'x'), 'debug'],
      [new TelemarkError('TMK_ERR_STORE_WRITE', 'x'), 'error'],
    ];
    for (const [error, level] of cases) {
      const { lines, log } = recordingLog();
      refuse(error, { route: 'batch', contentType: undefined, bodyRead: true, log });
      expect(lines.map((l) => [l.level, l.fields.code])).toEqual([[level, error.code]]);
    }
  });

  it('states a wait as whole seconds in Retry-After and whole ms in the body, at most a day (t12)', () => {
    const refuse = refusals();
    const { log } = recordingLog();
    const limited = (retryAfterMs: number, route = 'batch') => {
      const answer = refuse(noted(new TelemarkError('TMK_ERR_RATE_LIMITED', 'x'), { retryAfterMs }), {
        route,
        contentType: undefined,
        bodyRead: true,
        log,
      });
      const body = JSON.parse(answer.body) as { control?: { retryAfterMs?: number } };
      return [answer.headers?.['retry-after'], body.control?.retryAfterMs];
    };
    // A bucket refilling at 1e-25/s: 1e28 ms, once written as "9.999999999999999e+24" and 1e+28.
    expect(limited(1e28)).toEqual(['86400', 86_400_000]);
    expect(limited(Number.POSITIVE_INFINITY)).toEqual(['86400', 86_400_000]);
    expect(limited(86_400_001)).toEqual(['86400', 86_400_000]);
    expect(limited(1500.5)).toEqual(['2', 1501]);
    expect(limited(1)).toEqual(['1', 1]);
    expect(limited(1e28, 'scout')).toEqual(['86400', undefined]);
    for (const wait of [1e28, 123_456_789.5, 0.5]) expect(limited(wait)[0]).toMatch(/^\d+$/);
  });
});
