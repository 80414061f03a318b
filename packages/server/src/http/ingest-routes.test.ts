import { describe, expect, it } from 'vitest';
import { isMetritonPath } from './ingest-routes.js';

describe('isMetritonPath', () => {
  it("matches Metriton's paths with or without a trailing slash or a query", () => {
    for (const url of [
      '/scout',
      '/scout/',
      '/scout?x=1',
      '/beta/scout',
      '/beta/scout/',
      '/beta/scout/?a=b&c',
    ])
      expect([url, isMetritonPath(url)]).toEqual([url, true]);
  });

  it('leaves every other path to the router', () => {
    for (const url of [
      undefined,
      '',
      '/',
      '/scouts',
      '/scout//',
      '//scout',
      '/v1/batch',
      '/beta/scout/x',
      '/SCOUT',
    ])
      expect([url, isMetritonPath(url)]).toEqual([url, false]);
  });
});
