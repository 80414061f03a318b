import { describe, expect, it } from 'vitest';
import { TelemarkError } from '../errors.js';
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
});
