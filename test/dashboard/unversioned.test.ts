/**
 * Errors of events whose app version is blank (the API's `""`): the errors panel and its drill-down show
 * them as "unknown", as ingest stores a version a client did not send, not as an empty cell.
 */
import type { BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  launchChromium,
  postBatch,
  requireDashboardBuild,
  type Served,
  startServe,
  tempDir,
  wireMessage,
} from './_harness.js';

describe('errors seen only with a blank app version', () => {
  let served: Served;
  let browser: { context: BrowserContext; close(): Promise<void> };
  let page: Page;

  beforeAll(async () => {
    requireDashboardBuild();
    served = await startServe(tempDir());
    const now = Date.now();
    // Blank: ingest keeps it (only a missing or empty version becomes 'unknown'), the API answers "".
    const batch = [0, 1, 2].map((i) =>
      wireMessage({
        appVersion: ' ',
        properties: { error: 'could not intercept: the traffic manager is not running' },
        at: now - i * 60_000,
      }),
    );
    expect((await postBatch(served, batch)).status).toBe(200);
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
