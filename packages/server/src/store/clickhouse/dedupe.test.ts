import { describe, expect, it } from 'vitest';
import { resolveClickHouseOptions } from './clickhouse-options.js';
import { type Claim, dedupeKey, liveClaims, resolveRaces, storedMessages } from './dedupe.js';
import { counterRow, quarantineRow, storedJson, tsvField } from './rows.js';

const claim = (writeId: string, receivedAt: number, overrides: Partial<Claim> = {}): Claim => ({
  key: '7',
  key2: '8',
  writeId,
  receivedAt,
  aborted: false,
  ...overrides,
});

describe('dedupe across collectors', () => {
  it('pins the dedupe key (part of the data format and of sharding)', () => {
    expect(dedupeKey('telepresence2', '0b6f2c1e-77a4-4c5e-9a51-3f3c1d2e4b5a')).toEqual({
      key: '14569177027720400873',
      key2: '17593403937401734804',
    });
    expect(dedupeKey('a', 'bc')).not.toEqual(dedupeKey('ab', 'c'));
    // A lone surrogate hashes as the U+FFFD it is stored as.
    expect(dedupeKey('a', 'x\ud800')).toEqual(dedupeKey('a', 'x\ufffd'));
  });

  it('counts a message as stored only through a live claim', () => {
    const a = claim('10', 100);
    const other = claim('11', 100, { key2: '9' });
    expect(storedMessages([a], [])).toEqual(new Set(['7:8']));
    expect(storedMessages([{ ...a, aborted: true }], [])).toEqual(new Set());
    // Same first half, other second half: another message, not a duplicate.
    expect(storedMessages([other], [])).toEqual(new Set(['7:9']));
  });

  it('the earliest received wins a race, then the smaller write id; the rest are recorded as losers', () => {
    const early = claim('900', 100);
    const late = claim('5', 200);
    expect(resolveRaces('5', [late, early], [])).toEqual({
      lost: new Set(['7:8']),
      losers: [{ key: '7', writeId: '5', winner: '900' }],
    });
    expect(resolveRaces('900', [early, late], []).lost).toEqual(new Set());
    const tie = resolveRaces('18446744073709551615', [claim('18446744073709551615', 1), claim('2', 1)], []);
    expect(tie.losers).toEqual([{ key: '7', writeId: '18446744073709551615', winner: '2' }]);
  });

  it('a write that lost counts the message as a duplicate even when the winner recorded its loss first', () => {
    const winner = claim('1', 100);
    const loser = claim('2', 200);
    // The winner's check ran first and recorded the loss: the loser's claim is no longer live.
    const recorded = [{ key: '7', writeId: '2', winner: '1', winnerAborted: false }];
    expect(resolveRaces('2', [loser, winner], recorded)).toEqual({ lost: new Set(['7:8']), losers: [] });
    expect(resolveRaces('1', [winner, loser], recorded).lost).toEqual(new Set());
    // Its winner aborted: the claim is live again and, alone, wins.
    const aborted = [{ ...recorded[0]!, winnerAborted: true }];
    expect(resolveRaces('2', [loser, { ...winner, aborted: true }], aborted).lost).toEqual(new Set());
  });

  it('revives what lost to an aborted write, so a message is never hidden twice over', () => {
    const b = claim('2', 200);
    const beatenByA = [{ key: '7', writeId: '2', winner: '1', winnerAborted: false }];
    expect(liveClaims([b], beatenByA)).toEqual([]);
    expect(liveClaims([b], [{ ...beatenByA[0]!, winnerAborted: true }])).toEqual([b]);
    // A redo of the aborted write (same receive time) races b again and wins it back.
    const redo = claim('3', 100);
    const result = resolveRaces(
      '3',
      [redo, b, claim('1', 100, { aborted: true })],
      [{ ...beatenByA[0]!, winnerAborted: true }],
    );
    expect(result.losers).toEqual([{ key: '7', writeId: '2', winner: '3' }]);
    expect(result.lost).toEqual(new Set());
  });

  it('settles a race seen by nobody in particular (reconciliation)', () => {
    const result = resolveRaces('', [claim('1', 100), claim('2', 50), claim('3', 70)], []);
    expect(result.losers.map((l) => [l.writeId, l.winner])).toEqual([
      ['1', '2'],
      ['3', '2'],
    ]);
  });
});

describe('TabSeparated rows', () => {
  it('escapes what TabSeparated needs; JSON text with lone surrogates as U+FFFD', () => {
    expect(tsvField('a\tb\nc\\d\re\0f')).toBe('a\\tb\\nc\\\\d\\re\\0f');
    expect(storedJson({ k: '\ud83d', ok: 'x\\ud800' }, 'traits')).toBe('{"k":"\\ufffd","ok":"x\\\\ud800"}');
    expect(() => storedJson({ n: 1n }, 'events[3].traits')).toThrow(
      expect.objectContaining({
        code: 'TMK_ERR_STORE_INVALID_ROW',
        message: expect.stringContaining('events[3].traits'),
      }),
    );
  });

  it('writes quarantine and counter rows in table order', () => {
    expect(
      quarantineRow(
        {
          app: 'a',
          receivedAt: 5,
          protocol: 'segment',
          reason: 'r',
          detail: 'd\t',
          messageId: 'm',
          event: 'e',
          raw: '{"x":"\n"}',
        },
        'id-1',
        '9',
      ),
    ).toBe('id-1\ta\t5\tsegment\tr\td\\t\tm\te\t{"x":"\\n"}\t9\n');
    expect(counterRow({ day: '2026-01-02', app: 'a', kind: 'accepted', reason: '', count: 3 }, '9')).toBe(
      '2026-01-02\ta\taccepted\t\t3\t9\n',
    );
  });
});

describe('ClickHouse store options', () => {
  it('reports every problem at once and freezes the result', () => {
    expect(() =>
      resolveClickHouseOptions({
        url: 'localhost:8123',
        database: 'bad-name',
        dedupeWindowDays: 3,
        cluster: { name: 'c', nodes: ['http://a:1'] },
      }),
    ).toThrow(
      expect.objectContaining({
        code: 'TMK_ERR_CONFIG_INVALID',
        message: expect.stringMatching(
          /clickhouse\.url[\s\S]*clickhouse\.database[\s\S]*clickhouse\.cluster\.nodes[\s\S]*clickhouse\.dedupeWindowDays/,
        ),
      }),
    );
    const o = resolveClickHouseOptions({ url: 'http://127.0.0.1:8123/' });
    expect(o).toMatchObject({
      url: 'http://127.0.0.1:8123',
      database: 'telemark',
      user: 'default',
      dedupeWindowDays: 35,
    });
    expect(Object.isFrozen(o)).toBe(true);
  });
});
