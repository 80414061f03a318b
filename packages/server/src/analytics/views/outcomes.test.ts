import { describe, expect, it } from 'vitest';
import { parseWhereTraits } from './outcomes.js';

describe('parseWhereTraits', () => {
  it('reads the JSON object both dialects build; a missing trait is null', () => {
    expect(parseWhereTraits('{"method":null,"result":"ok"}')).toEqual({ method: null, result: 'ok' });
    expect(parseWhereTraits('{}')).toEqual({});
    expect(parseWhereTraits('')).toEqual({});
  });

  it('fails on text that is not a JSON object instead of counting the row nowhere', () => {
    expect(() => parseWhereTraits('{"method":,"result":"ok"}')).toThrow(/not a JSON object/);
    expect(() => parseWhereTraits('[1]')).toThrow(/not a JSON object/);
  });
});
