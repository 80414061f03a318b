import { describe, expect, it } from 'vitest';
import { CORPUS_IDENTITY, TELEPRESENCE_ERRORS } from './corpus/telepresence-errors.js';
import { createScrubber, errorFingerprint, errorTemplate } from './index.js';

const local = createScrubber(CORPUS_IDENTITY);
const collector = createScrubber();

function survivors(text: string, identifying: readonly string[]): string[] {
  const lower = text.toLowerCase();
  return identifying.filter((needle) => lower.includes(needle.toLowerCase()));
}

describe('the Telepresence error corpus', () => {
  it('has at least 100 distinct, realistic entries', () => {
    expect(TELEPRESENCE_ERRORS.length).toBeGreaterThanOrEqual(100);
    const ids = TELEPRESENCE_ERRORS.map((entry) => entry.id);
    expect(new Set(ids).size).toBe(ids.length);
    for (const entry of TELEPRESENCE_ERRORS) {
      // The corpus itself must be sound: every identifying substring and kept word is in the text.
      for (const needle of entry.identifying)
        expect(entry.text.toLowerCase()).toContain(needle.toLowerCase());
      for (const word of entry.keeps) expect(entry.text).toContain(word);
    }
    const withNames = TELEPRESENCE_ERRORS.filter((entry) => entry.identifying.length > 0);
    expect(withNames.length).toBeGreaterThanOrEqual(100);
  });

  it.each(TELEPRESENCE_ERRORS.map((entry) => [entry.id, entry] as const))(
    'on the user machine, %s leaks nothing and stays recognisable',
    (_id, entry) => {
      const { text, rules } = local(entry.text);
      expect(survivors(text, entry.identifying), text).toEqual([]);
      for (const word of entry.keeps) expect(text, `kept word "${word}"`).toContain(word);
      if (entry.identifying.length > 0) expect(rules.length).toBeGreaterThan(0);
    },
  );

  it.each(TELEPRESENCE_ERRORS.map((entry) => [entry.id, entry] as const))(
    'at the collector (no identity), %s leaks nothing the generic rules can know',
    (_id, entry) => {
      const { text } = collector(entry.text);
      const knowable = entry.identifying.filter((needle) => !entry.identityOnly?.includes(needle));
      expect(survivors(text, knowable), text).toEqual([]);
      for (const word of entry.keeps) expect(text, `kept word "${word}"`).toContain(word);
    },
  );

  it('scrubbing twice changes nothing (the collector scrubs what the client scrubbed)', () => {
    for (const entry of TELEPRESENCE_ERRORS) {
      const once = local(entry.text).text;
      expect(local(once).text, entry.id).toBe(once);
      expect(collector(once).text, entry.id).toBe(once);
      const atCollector = collector(entry.text).text;
      expect(collector(atCollector).text, entry.id).toBe(atCollector);
    }
  });

  it('gives the client and the collector the same fingerprint for every entry', () => {
    for (const entry of TELEPRESENCE_ERRORS) {
      const onClient = local(entry.text).text;
      expect(errorFingerprint(collector(onClient).text), entry.id).toBe(errorFingerprint(onClient));
      expect(errorTemplate(errorTemplate(onClient)), entry.id).toBe(errorTemplate(onClient));
    }
  });
});
