import { describe, expect, it } from 'vitest';
import { TelemarkError } from '../errors.js';
import type { Keeper } from '../ingest/prepared.js';
import type { InstallErasure } from '../store/types.js';
import { eraseInstall } from './erasure.js';

/**
 * A store whose `deleteInstall` answers each id with the given counts or error, recording the calls.
 * (A real store failing after its commit: `store/duckdb/duckdb-store.test.ts`, "a removal that fails".)
 */
function storeAnswering(answers: Record<string, InstallErasure | Error>) {
  const calls: string[] = [];
  return {
    calls,
    deleteInstall: async (_app: string, id: string) => {
      calls.push(id);
      const answer = answers[id] ?? { events: 0, quarantine: 0 };
      if (answer instanceof Error) throw answer;
      return answer;
    },
    // No legacy quarantine entries to rewrite first.
    listQuarantine: async () => [],
    write: async () => {
      throw new Error('nothing to write');
    },
  };
}

const pseudonymous: Keeper = { scrub: (text) => text, installId: (id) => `p(${id})` };
const asGiven: Keeper = { scrub: (text) => text, installId: (id) => id };
const unfinished = () =>
  new TelemarkError('TMK_ERR_STORE_UNFINISHED', '4 events removed; then the checkpoint failed');

describe('eraseInstall', () => {
  it('erases the id as given, then its pseudonym, and adds up the counts', async () => {
    const store = storeAnswering({
      jdoe: { events: 1, quarantine: 2 },
      'p(jdoe)': { events: 3, quarantine: 0 },
    });
    expect(await eraseInstall(store, 'a', 'jdoe', pseudonymous)).toEqual({
      app: 'a',
      installId: 'jdoe',
      storedAs: 'p(jdoe)',
      events: 4,
      quarantine: 2,
    });
    expect(store.calls).toEqual(['jdoe', 'p(jdoe)']);
    const plain = storeAnswering({ inst: { events: 2, quarantine: 0 } });
    expect(await eraseInstall(plain, 'a', 'inst', asGiven)).toEqual({
      app: 'a',
      installId: 'inst',
      events: 2,
      quarantine: 0,
    });
    expect(plain.calls).toEqual(['inst']);
  });

  it('still erases the pseudonym when the first pass failed after its commit, then says the erasure is unfinished', async () => {
    const store = storeAnswering({ jdoe: unfinished(), 'p(jdoe)': { events: 3, quarantine: 1 } });
    const error = await eraseInstall(store, 'a', 'jdoe', pseudonymous).catch((e: unknown) => e);
    // Until 2026-11-29 the pseudonym's events were left in place.
    expect(store.calls).toEqual(['jdoe', 'p(jdoe)']);
    expect(error).toMatchObject({
      code: 'TMK_ERR_STORE_UNFINISHED',
      detail:
        "4 events removed; then the checkpoint failed; the install's pseudonym was erased too: 3 events, 1 quarantine entries",
      message: expect.stringContaining('run the same command again to finish it'),
    });
    // The ids stay out of what is told (counts and codes only).
    expect((error as Error).message).not.toContain('jdoe');
  });

  it('says so when the pseudonym could not be erased either; any other first failure stops at once', async () => {
    const down = new TelemarkError('TMK_ERR_STORE_UNAVAILABLE', 'the database is being reopened');
    const both = storeAnswering({ jdoe: unfinished(), 'p(jdoe)': down });
    await expect(eraseInstall(both, 'a', 'jdoe', pseudonymous)).rejects.toMatchObject({
      code: 'TMK_ERR_STORE_UNFINISHED',
      detail:
        "4 events removed; then the checkpoint failed; erasing the install's pseudonym failed as well: [TMK_ERR_STORE_UNAVAILABLE] the database is being reopened",
    });
    expect(both.calls).toEqual(['jdoe', 'p(jdoe)']);

    // Rolled back (nothing written): the error as it is, and no second pass.
    const rolledBack = new TelemarkError('TMK_ERR_STORE_WRITE', 'disk full');
    const refused = storeAnswering({ jdoe: rolledBack });
    await expect(eraseInstall(refused, 'a', 'jdoe', pseudonymous)).rejects.toBe(rolledBack);
    expect(refused.calls).toEqual(['jdoe']);

    // Without a pseudonym there is nothing more to erase: the store's error as it is.
    const alone = unfinished();
    await expect(eraseInstall(storeAnswering({ inst: alone }), 'a', 'inst', asGiven)).rejects.toBe(alone);
  });
});
