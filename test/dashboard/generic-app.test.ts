/**
 * Any catalog, not just Telepresence: a made-up app registered with a write key is simulated by the
 * generic scenario through `/v1/batch` (with `--write-key`), and the dashboard builds its panels from that
 * app's catalog — its outcomes, its funnel — after switching apps with the app selector.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  api,
  artifactPath,
  launchChromium,
  requireDashboardBuild,
  runCli,
  type Served,
  startServe,
  tempDir,
} from './_harness.js';

const WIDGET = {
  app: 'widget',
  title: 'Widget CLI',
  events: {
    build_started: {
      description: 'A build started.',
      traits: { target: { type: 'enum', values: ['dev', 'prod'] } },
    },
    build_finished: {
      description: 'A build finished.',
      traits: { seconds: { type: 'duration', unit: 's' } },
    },
    build_failed: { description: 'A build failed.', traits: { error: { type: 'error', required: true } } },
    deployed: { description: 'Deployed.', traits: { replicas: { type: 'integer', max: 50 } } },
    doctor: { description: 'Ran doctor.', traits: { healthy: { type: 'boolean', required: true } } },
  },
  outcomes: {
    builds: {
      title: 'Builds',
      results: {
        ok: { event: 'build_finished', kind: 'success' },
        failed: { event: 'build_failed', kind: 'failure' },
      },
    },
    doctor: {
      title: 'Doctor checks',
      results: {
        healthy: { event: 'doctor', where: { healthy: true }, kind: 'success' },
        sick: { event: 'doctor', where: { healthy: false }, kind: 'failure' },
      },
    },
  },
  funnels: { ship: { title: 'Ship it', steps: ['build_started', 'build_finished', 'deployed'] } },
};
const KEY = 'wk_widget_0123456789';

describe('a non-Telepresence app: generic simulation and a catalog-driven dashboard', () => {
  let served: Served;

  beforeAll(async () => {
    requireDashboardBuild();
    const dir = tempDir();
    const catalogFile = join(dir, 'widget.json');
    writeFileSync(catalogFile, JSON.stringify(WIDGET));
    const config = join(dir, 'config.json');
    writeFileSync(config, JSON.stringify({ apps: { widget: { catalog: 'widget.json', writeKeys: [KEY] } } }));
    served = await startServe(join(dir, 'data'), ['--config', config]);
    const run = await runCli([
      'simulate',
      '--app',
      'widget',
      '--catalog',
      catalogFile,
      '--installs',
      '150',
      '--days',
      '20',
      '--to',
      served.url,
      '--write-key',
      KEY,
      '--json',
    ]);
    expect(run.code, run.stderr).toBe(0);
    const result = JSON.parse(run.stdout) as { events: number; accepted: number; rejected: number };
    expect(result.rejected).toBe(0);
    expect(result.accepted).toBe(result.events);
  });
  afterAll(async () => {
    await served?.stop();
  });

  it('shows the app’s own outcomes and funnel after switching apps', async () => {
    const from = new Date(Date.now() - 29 * 86_400_000).toISOString().slice(0, 10);
    const overview = await api<{ events: number }>(served, 'overview', { app: 'widget', from });
    expect(overview.events).toBeGreaterThan(1000);
    const browser = await launchChromium();
    try {
      const page = await browser.context.newPage();
      await page.goto(`${served.url}/`);
      await page.getByLabel('Admin token').fill(served.token);
      await page.getByRole('button', { name: 'Sign in' }).click();
      await page.getByLabel('App').selectOption('widget');
      await page.waitForFunction(() => new URL(location.href).searchParams.get('app') === 'widget');
      await page.waitForSelector('#panel-outcomes[data-status="ready"]');
      await page.waitForSelector('#panel-funnel-ship[data-status="ready"]');
      expect(await page.getByRole('heading', { level: 1 }).textContent()).toBe('Widget CLI');
      const outcomes = await page.locator('#panel-outcomes article.outcome h3').allTextContents();
      expect(outcomes.sort()).toEqual(['Builds', 'Doctor checks']);
      expect(await page.locator('#panel-funnel-connect').count()).toBe(0);
      const steps = await page
        .locator('[data-funnel="ship"] tbody tr')
        .evaluateAll((rows) => rows.map((r) => r.getAttribute('data-step')));
      expect(steps).toEqual(['build_started', 'build_finished', 'deployed']);
      await page.waitForSelector('#panel-overview[data-status="ready"]');
      await expect
        .poll(() => page.locator('[data-figure="events"] .figure-value').textContent())
        .toBe(overview.events.toLocaleString('en-US'));
      await page.screenshot({ path: artifactPath('dashboard-generic-app.png'), fullPage: true });
    } finally {
      await browser.close();
    }
  });
});
