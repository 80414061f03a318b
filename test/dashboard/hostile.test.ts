/**
 * Hostile values ingested through the real ingest path (POST /v1/batch to `telemark serve`) — in error
 * traits and in context fields the scrubber does not rewrite (OS name, version, arch, install method) —
 * are shown by the dashboard as text, and nothing in them runs.
 */
import { randomUUID } from 'node:crypto';
import type { BrowserContext, Dialog, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  artifactPath,
  launchChromium,
  postBatch,
  requireDashboardBuild,
  type Served,
  startServe,
  tempDir,
  wireMessage,
} from './_harness.js';

const PAYLOADS = {
  os: `<img src=x onerror="window.__pwned='os'">`,
  version: `<script>window.__pwned='v'</script>`,
  arch: `"><svg onload=window.__pwned='arch'>`,
  installMethod: `javascript:window.__pwned='im'`,
} as const;

const ERRORS = [
  `<script>window.__pwned='error'</script> failed`,
  `<img src=x onerror="window.__pwned='img'"> could not intercept`,
  `javascript:window.__pwned='js' is not a valid workload`,
  `"><iframe srcdoc="<script>parent.__pwned='frame'</script>"></iframe>`,
];

const message = (installId: string, event: string, properties: Record<string, unknown>, at: number) =>
  wireMessage({
    installId,
    event,
    properties,
    at,
    appVersion: PAYLOADS.version,
    osName: PAYLOADS.os,
    arch: PAYLOADS.arch,
    installMethod: PAYLOADS.installMethod,
  });

describe('hostile trait and context values are displayed as text', () => {
  let served: Served;
  let browser: { context: BrowserContext; close(): Promise<void> };
  let page: Page;
  const dialogs: string[] = [];
  const consoleErrors: string[] = [];

  beforeAll(async () => {
    requireDashboardBuild();
    served = await startServe(tempDir());
    const now = Date.now();
    const batch = [];
    // Six installs, so breakdown rows clear the k = 5 fold.
    for (let i = 0; i < 6; i++) {
      const install = randomUUID();
      for (const [j, error] of ERRORS.entries())
        batch.push(message(install, 'intercept_fail', { error }, now - (i * 10 + j) * 60_000));
      batch.push(message(install, 'intercept_success', {}, now - i * 60_000 - 5000));
      batch.push(
        message(install, 'login_failure', { error: ERRORS[0], method: 'browser' }, now - i * 60_000 - 9000),
      );
    }
    batch.push(message(randomUUID(), '<img src=x onerror=alert(1)>', {}, now));
    const { status, results } = await postBatch(served, batch);
    expect(status).toBe(200);
    expect(results.filter((r) => r.status === 'accepted')).toHaveLength(batch.length - 1);
    expect(results.filter((r) => r.status === 'rejected')).toHaveLength(1);

    browser = await launchChromium();
    page = await browser.context.newPage();
    page.on('dialog', (d: Dialog) => {
      dialogs.push(d.message());
      void d.dismiss();
    });
    page.on('console', (m) => {
      if (m.type() === 'error') consoleErrors.push(m.text());
    });
    page.on('pageerror', (e) => consoleErrors.push(e.message));
    await page.goto(`${served.url}/`);
    await page.getByLabel('Admin token').fill(served.token);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.waitForFunction(
      () =>
        document.querySelectorAll('section.panel').length > 0 &&
        document.querySelectorAll('section.panel[data-status="loading"]').length === 0,
      null,
      { timeout: 30_000 },
    );
  });

  afterAll(async () => {
    await browser?.close();
    await served?.stop();
  });

  const injected = () =>
    page.evaluate(() => ({
      pwned: (window as unknown as { __pwned?: string }).__pwned ?? null,
      inlineScripts: document.querySelectorAll('script:not([src])').length,
      images: document.querySelectorAll('img').length,
      svgWithHandlers: document.querySelectorAll('svg[onload]').length,
      iframes: document.querySelectorAll('iframe').length,
      handlerAttributes: [...document.querySelectorAll('*')].filter((el) =>
        [...el.attributes].some((a) => a.name.startsWith('on')),
      ).length,
      javascriptLinks: document.querySelectorAll('a[href^="javascript:" i]').length,
    }));

  const clean = {
    pwned: null,
    inlineScripts: 0,
    images: 0,
    svgWithHandlers: 0,
    iframes: 0,
    handlerAttributes: 0,
    javascriptLinks: 0,
  };

  it('shows hostile OS names and versions as text in breakdowns, filters and headline', async () => {
    const osRow = page.locator(`#panel-breakdown tr[data-value="${PAYLOADS.os.replaceAll('"', '\\"')}"] th`);
    expect(await osRow.textContent()).toBe(PAYLOADS.os);
    expect(await page.locator('[data-figure="latest-version"] .figure-value').textContent()).toBe(
      PAYLOADS.version,
    );
    await page.getByRole('button', { name: /Version All versions/ }).click();
    expect(await page.getByRole('checkbox', { name: PAYLOADS.version }).count()).toBe(1);
    await page.getByRole('button', { name: 'Done' }).click();
    // Right after a click the panel may still be "ready" with the previous tab's table: wait for the
    // table of the tab clicked.
    for (const [tab, dimension] of [
      ['Architecture', 'arch'],
      ['Install method', 'install_method'],
    ] as const) {
      await page.getByRole('tab', { name: tab }).click();
      await page.waitForSelector(
        `#panel-breakdown[data-status="ready"] table[data-dimension="${dimension}"]`,
      );
    }
    expect(await page.locator('#panel-breakdown tbody th').allTextContents()).toContain(
      PAYLOADS.installMethod,
    );
    expect(await injected()).toEqual(clean);
  });

  it('shows hostile error text as text, in the list and in the drill-down', async () => {
    const samples = await page.locator('#panel-errors .sample').allTextContents();
    expect(samples.length).toBeGreaterThan(0);
    // Whatever the scrubber left of the markup is shown literally.
    expect(samples.join('\n')).toMatch(/<script>|<img|<iframe|javascript:/);
    await page.locator('#panel-errors tbody tr').first().getByRole('button').click();
    await page.waitForSelector('#panel-error-detail[data-status="ready"]');
    const detail = await page.locator('#panel-error-detail').textContent();
    expect(detail).toContain(PAYLOADS.os);
    expect(detail).toContain(PAYLOADS.version);
    await page.screenshot({ path: artifactPath('dashboard-hostile.png'), fullPage: true });
    expect(await injected()).toEqual(clean);
    expect(dialogs).toEqual([]);
    expect(consoleErrors).toEqual([]);
  });
});
