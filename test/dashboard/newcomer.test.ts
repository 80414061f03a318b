/**
 * A newcomer's path: `telemark serve --demo` on an empty data directory seeds simulated Telepresence
 * data, prints the URL and the admin token; opening the URL and signing in with that token shows a full
 * overview. Restarting with --demo does not seed twice.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEMO } from '../../packages/server/src/simulate/demo.js';
import {
  api,
  fmtInt,
  launchChromium,
  requireDashboardBuild,
  type Served,
  startServe,
  tempDir,
} from './_harness.js';

describe('newcomer: serve --demo, open the printed URL, sign in with the printed token', () => {
  const dataDir = tempDir();
  let served: Served;

  beforeAll(async () => {
    requireDashboardBuild();
    served = await startServe(dataDir, ['--demo'], { timeoutMs: 120_000 });
  });
  afterAll(async () => {
    await served?.stop();
  });

  it('prints the dashboard URL and the token, and the dashboard shows the seeded fleet', async () => {
    await expect.poll(() => served.output()).toContain('Dashboard:');
    const output = served.output();
    expect(output).toMatch(
      new RegExp(`seeding an empty store with ${DEMO.installs} simulated Telepresence installs`),
    );
    const printedUrl = /Dashboard: (http:\/\/\S+)/.exec(output)?.[1];
    const printedToken = /Admin token[^:]*: (\S+)/.exec(output)?.[1];
    expect(printedUrl).toBe(`${served.url}/`);
    expect(printedToken).toBe(served.token);

    const overview = await api<{ events: number; installs: number }>(served, 'overview', {
      app: 'telepresence2',
      from: new Date(Date.now() - 29 * 86_400_000).toISOString().slice(0, 10),
    });
    expect(overview.events).toBeGreaterThan(10_000);

    const browser = await launchChromium();
    try {
      const page = await browser.context.newPage();
      await page.goto(printedUrl as string);
      await page.getByLabel('Admin token').fill(printedToken as string);
      await page.getByRole('button', { name: 'Sign in' }).click();
      await page.waitForSelector('[data-figure="events"]');
      await expect
        .poll(() => page.locator('[data-figure="events"] .figure-value').textContent())
        .toBe(fmtInt(overview.events));
      expect(await page.getByRole('heading', { level: 1 }).textContent()).toBe('Telepresence');
      await page.waitForSelector('#panel-errors[data-status="ready"]');
      expect(await page.locator('#panel-errors tbody tr').count()).toBeGreaterThan(0);
    } finally {
      await browser.close();
    }
  });

  it('does not seed a data directory that already has events', async () => {
    await served.stop();
    served = await startServe(dataDir, ['--demo'], { timeoutMs: 120_000 });
    // One accurate line that says what to do, no "seeding…" announced first.
    expect(served.output()).not.toContain('seeding');
    expect(served.output()).toContain(`Demo: nothing seeded: ${dataDir} already has events`);
    expect(served.output()).toContain('--data <new dir>');
  });
});
