/**
 * Errors of events whose app version is blank (the API's `""`): the errors panel and its drill-down show
 * them as "unknown", as ingest stores a version a client did not send, not as an empty cell.
 */
import { randomUUID } from 'node:crypto';
import type { BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { launchChromium, requireDashboardBuild, type Served, startServe, tempDir } from './_harness.js';

function message(installId: string, at: number) {
  return {
    type: 'track',
    messageId: randomUUID(),
    timestamp: new Date(at).toISOString(),
    anonymousId: installId,
    event: 'intercept_fail',
    properties: { error: 'could not intercept: the traffic manager is not running' },
    context: {
      // Blank: ingest keeps it (only a missing or empty version becomes 'unknown'), the API answers "".
      app: { name: 'telepresence2', version: ' ' },
      library: { name: 'telemark', version: '0.1.0' },
      os: { name: 'linux', version: '6.1', build: '1' },
      cli: {
        arch: 'amd64',
        platform: 'linux',
        mode: 'cli',
        sessionId: randomUUID(),
        seq: 1,
        installMethod: 'brew',
        envClass: 'interactive',
        ciVendor: null,
        container: false,
        wsl: 0,
        agent: null,
        nodeVersion: '20.19.0',
        catalog: 'x',
      },
    },
  };
}

describe('errors seen only with a blank app version', () => {
  let served: Served;
  let browser: { context: BrowserContext; close(): Promise<void> };
  let page: Page;

  beforeAll(async () => {
    requireDashboardBuild();
    served = await startServe(tempDir());
    const now = Date.now();
    const batch = [0, 1, 2].map((i) => message(randomUUID(), now - i * 60_000));
    const response = await fetch(`${served.url}/v1/batch`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ batch, sentAt: new Date().toISOString() }),
    });
    expect(response.status).toBe(200);
    browser = await launchChromium();
    page = await browser.context.newPage();
    await page.goto(`${served.url}/`);
    await page.getByLabel('Admin token').fill(served.token);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.waitForSelector('#panel-errors[data-status="ready"] tbody tr', { timeout: 30_000 });
  });

  afterAll(async () => {
    await browser?.close();
    await served?.stop();
  });

  it('shows unknown for the versions, in the list and in the drill-down', async () => {
    const row = page.locator('#panel-errors tbody tr').first();
    // Columns: error, event, count, installs, versions, trend, details.
    expect(await row.locator('td').nth(4).textContent()).toBe('unknown');
    await row.getByRole('button').click();
    await page.waitForSelector('#panel-error-detail[data-status="ready"]');
    const detail = page.locator('#panel-error-detail');
    expect(
      await detail.locator('table', { hasText: 'By version' }).locator('tbody th').allTextContents(),
    ).toEqual(['unknown']);
    const meta = await detail.locator('.sample-meta').allTextContents();
    expect(meta).toHaveLength(3);
    for (const line of meta) expect(line).toMatch(/ · unknown · linux$/);
  });
});
