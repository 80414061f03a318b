/**
 * The dashboard in real Chromium against the real collector (`telemark serve`, child process) on a
 * DuckDB file seeded by the simulator: sign in, every panel renders the API's figures, filters live in
 * the URL (and back/forward work), error drill-down shows scrubbed samples, narrow and dark layouts.
 */
import type { BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  api,
  artifactPath,
  defaultFrom,
  fmtInt,
  launchChromium,
  requireDashboardBuild,
  runCli,
  type Served,
  startServe,
  tempDir,
} from './_harness.js';

interface Overview {
  events: number;
  installs: number;
  activeInstalls: { daily: number; weekly: number; monthly: number };
  latestVersion: string;
}
interface Funnel {
  steps: { event: string; sessions: number }[];
}
interface ErrorsView {
  errors: { fingerprint: string; count: number; sample: string; newInVersion: string | null }[];
}
interface ErrorDetail {
  count: number;
  installs: number;
  samples: { text: string }[];
}
interface Breakdown {
  rows: { value: string; events: number }[];
}

const APP = 'telepresence2';

describe('dashboard (real Chromium, real collector, simulated fleet)', () => {
  let served: Served;
  let browser: { context: BrowserContext; close(): Promise<void> };
  let page: Page;
  const pageErrors: string[] = [];
  const from = defaultFrom();

  beforeAll(async () => {
    requireDashboardBuild();
    const dataDir = tempDir();
    const seeded = await runCli([
      'simulate',
      '--installs',
      '300',
      '--days',
      '45',
      '--seed',
      '7',
      '--data',
      dataDir,
    ]);
    expect(seeded.code, seeded.stderr).toBe(0);
    served = await startServe(dataDir);
    browser = await launchChromium();
    page = await browser.context.newPage();
    page.on('pageerror', (e) => pageErrors.push(e.message));
    page.on('console', (m) => {
      if (m.type() === 'error') pageErrors.push(m.text());
    });
    // Any Content-Security-Policy violation is an error in this test.
    await page.addInitScript(() => {
      document.addEventListener('securitypolicyviolation', (e) => {
        console.error(`CSP violation: ${e.violatedDirective} ${e.blockedURI}`);
      });
    });
  });

  afterAll(async () => {
    await browser?.close();
    await served?.stop();
  });

  const settled = async (): Promise<void> => {
    await page.waitForFunction(
      () =>
        document.querySelectorAll('section.panel').length > 0 &&
        document.querySelectorAll('section.panel[data-status="loading"]').length === 0,
      null,
      { timeout: 30_000 },
    );
  };
  const figure = (name: string): Promise<string | null> =>
    page.locator(`[data-figure="${name}"] .figure-value`).first().textContent();

  it('serves the page with a strict CSP and cache headers', async () => {
    const index = await fetch(`${served.url}/`);
    expect(index.status).toBe(200);
    const csp = index.headers.get('content-security-policy') ?? '';
    expect(csp).toContain("script-src 'self'");
    expect(csp).not.toContain('unsafe-inline');
    expect(csp).toContain("require-trusted-types-for 'script'");
    expect(index.headers.get('cache-control')).toBe('no-cache');
    const html = await index.text();
    const asset = /src="\.\/(assets\/[^"]+\.js)"/.exec(html)?.[1];
    expect(asset).toBeDefined();
    const script = await fetch(`${served.url}/${asset}`);
    expect(script.headers.get('cache-control')).toContain('immutable');
    expect(html).not.toMatch(/<script>(?!<\/script>)|<script[^>]*>[^<]+<\/script>/);
  });

  it('asks for the token, refuses a wrong one, and signs in with the right one', async () => {
    await page.goto(`${served.url}/`);
    await page.getByLabel('Admin token').fill('not-the-token');
    await page.getByRole('button', { name: 'Sign in' }).click();
    await expect.poll(() => page.getByRole('alert').textContent()).toContain('not accepted');
    // Chromium logs the refused request itself; nothing else may be logged from here on.
    pageErrors.length = 0;
    await page.getByLabel('Admin token').fill(served.token);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await settled();
    expect(await page.evaluate(() => sessionStorage.getItem('telemark.adminToken'))).toBe(served.token);
    expect(new URL(page.url()).searchParams.get('app')).toBe(APP);
  });

  it('renders every panel with the figures the API answers', async () => {
    const overview = await api<Overview>(served, 'overview', { app: APP, from });
    expect(overview.events).toBeGreaterThan(1000);
    expect(await figure('events')).toBe(fmtInt(overview.events));
    expect(await figure('installs')).toBe(fmtInt(overview.installs));
    expect(await figure('weekly')).toBe(fmtInt(overview.activeInstalls.weekly));
    expect(await figure('latest-version')).toBe(overview.latestVersion);

    for (const id of [
      'overview',
      'trends',
      'installs',
      'outcomes',
      'funnel-connect',
      'errors',
      'breakdown',
      'adoption',
      'retention',
      'health',
    ])
      expect(await page.locator(`#panel-${id}`).getAttribute('data-status'), id).toBe('ready');
    // One outcome card per catalog outcome, each with a chart canvas.
    expect(await page.locator('#panel-outcomes article.outcome').count()).toBe(4);
    expect(await page.locator('#panel-outcomes canvas').count()).toBeGreaterThanOrEqual(4);
    expect(await page.locator('#panel-trends canvas').count()).toBeGreaterThan(0);

    const funnel = await api<Funnel>(served, 'funnel', { app: APP, from, funnel: 'connect' });
    for (const step of funnel.steps) {
      const cell = page.locator(`[data-funnel="connect"] tr[data-step="${step.event}"] td`).first();
      expect(await cell.textContent()).toBe(fmtInt(step.sessions));
    }
    expect(funnel.steps[2]?.sessions).toBeLessThan(funnel.steps[0]?.sessions ?? 0);

    const breakdown = await api<Breakdown>(served, 'breakdown', { app: APP, from, dimension: 'os_name' });
    const top = breakdown.rows[0];
    expect(top?.value).toBe('macOS');
    expect(await page.locator(`#panel-breakdown tr[data-value="macOS"] td`).first().textContent()).toBe(
      fmtInt(top?.events ?? -1),
    );

    const errors = await api<ErrorsView>(served, 'errors', { app: APP, from, limit: '20' });
    expect(errors.errors.length).toBeGreaterThan(3);
    const firstRow = page.locator('#panel-errors tbody tr').first();
    expect(await firstRow.getAttribute('data-fingerprint')).toBe(errors.errors[0]?.fingerprint);
    // The regressed release's new error is flagged.
    expect(await page.locator('#panel-errors .badge', { hasText: 'New in 2.21.0' }).count()).toBeGreaterThan(
      0,
    );

    expect(await page.locator('#panel-retention tbody tr').count()).toBeGreaterThan(2);
    expect(await page.locator('#panel-adoption canvas').count()).toBeGreaterThan(0);
    expect(await figure('quarantine')).toBe('0');
    await page.screenshot({ path: artifactPath('dashboard-overview.png'), fullPage: true });
  });

  it('keeps filters in the URL: changing one changes the figures, back and forward restore them', async () => {
    const all = await api<Overview>(served, 'overview', { app: APP, from });
    const mac = await api<Overview>(served, 'overview', { app: APP, from, os: 'macOS' });
    expect(mac.events).toBeLessThan(all.events);

    await page.getByRole('button', { name: /OS All OSes/ }).click();
    await page.getByRole('checkbox', { name: 'macOS' }).check();
    await page.getByRole('button', { name: 'Done' }).click();
    await expect.poll(() => new URL(page.url()).searchParams.getAll('os')).toEqual(['macOS']);
    await settled();
    await expect.poll(() => figure('events')).toBe(fmtInt(mac.events));

    await page.getByLabel('Interval').selectOption('week');
    await expect.poll(() => new URL(page.url()).searchParams.get('interval')).toBe('week');
    await settled();

    await page.goBack();
    await expect.poll(() => new URL(page.url()).searchParams.get('interval')).toBeNull();
    expect(new URL(page.url()).searchParams.getAll('os')).toEqual(['macOS']);
    await page.goBack();
    await expect.poll(() => new URL(page.url()).searchParams.getAll('os')).toEqual([]);
    await settled();
    await expect.poll(() => figure('events')).toBe(fmtInt(all.events));
    await page.goForward();
    await settled();
    await expect.poll(() => figure('events')).toBe(fmtInt(mac.events));

    // A shared link opens the same view in a fresh tab, after signing in there (the token is per tab).
    const shared = await browser.context.newPage();
    await shared.goto(page.url());
    await shared.getByLabel('Admin token').fill(served.token);
    await shared.getByRole('button', { name: 'Sign in' }).click();
    await shared.waitForSelector('[data-figure="events"]');
    expect(new URL(shared.url()).searchParams.getAll('os')).toEqual(['macOS']);
    await expect
      .poll(() => shared.locator('[data-figure="events"] .figure-value').textContent())
      .toBe(fmtInt(mac.events));
    await shared.close();
    await page.goBack();
    await settled();
  });

  it('drills into an error and shows its scrubbed samples', async () => {
    const errors = await api<ErrorsView>(served, 'errors', { app: APP, from, limit: '20' });
    const target = errors.errors[0];
    if (!target) throw new Error('no errors');
    await page
      .locator(`#panel-errors tr[data-fingerprint="${target.fingerprint}"]`)
      .getByRole('button')
      .click();
    await expect.poll(() => new URL(page.url()).searchParams.get('error')).toBe(target.fingerprint);
    const detail = await api<ErrorDetail>(served, `errors/${target.fingerprint}`, { app: APP, from });
    await page.waitForSelector('#panel-error-detail[data-status="ready"]');
    expect(await page.locator('[data-figure="error-count"] .figure-value').textContent()).toBe(
      fmtInt(detail.count),
    );
    const samples = await page.locator('#panel-error-detail .sample-text').allTextContents();
    expect(samples.length).toBe(detail.samples.length);
    expect(samples.length).toBeGreaterThan(0);
    for (const text of samples)
      expect(text).not.toMatch(/\/Users\/[a-z]|\/home\/[a-z]|@[a-z]+\.com|\b10\.\d+\.\d+\.\d+/);
    // Focus moves to the opened detail, for keyboard and screen-reader users.
    expect(await page.evaluate(() => document.activeElement?.id)).toBe('error-detail-title');
    await page.getByRole('button', { name: 'Close' }).click();
    await expect.poll(() => new URL(page.url()).searchParams.get('error')).toBeNull();
  });

  it('is keyboard accessible: a skip link first, real buttons, labelled controls, charts with tables', async () => {
    await page.reload();
    await settled();
    await page.keyboard.press('Tab');
    expect(await page.evaluate(() => document.activeElement?.textContent)).toContain('Skip to the dashboard');
    const unnamed = await page.evaluate(() =>
      [...document.querySelectorAll('button, select, input')]
        .filter((el) => {
          const named =
            el.getAttribute('aria-label') ||
            el.getAttribute('aria-labelledby') ||
            el.textContent?.trim() ||
            (el.id && document.querySelector(`label[for="${el.id}"]`)) ||
            el.closest('label');
          return !named;
        })
        .map((el) => el.outerHTML.slice(0, 80)),
    );
    expect(unnamed).toEqual([]);
    expect(await page.locator('[onclick], div[role="button"]').count()).toBe(0);
    const charts = await page.locator('figure.chart').count();
    expect(charts).toBeGreaterThan(5);
    expect(await page.locator('figure.chart details.as-table table').count()).toBe(charts);
    // Tabs move with the arrow keys.
    await page.locator('#tab-os_name').focus();
    await page.keyboard.press('ArrowRight');
    await expect.poll(() => new URL(page.url()).searchParams.get('dim')).toBe('os_version');
    await expect.poll(() => page.evaluate(() => document.activeElement?.id)).toBe('tab-os_version');
  });

  it('states what each outcome rate is a share of: completed attempts, not all attempts', async () => {
    const overview = await api<{
      outcomes: { outcome: string; rate: number | null; total: number; completed: number }[];
    }>(served, 'overview', { app: APP, from });
    // Interrupted logins, VPN diagnosis errors: attempts, but not in the rate. The headline names both counts.
    const partial = overview.outcomes.find((o) => o.completed < o.total);
    expect(partial).toBeDefined();
    for (const o of overview.outcomes) {
      const note = await page.locator(`[data-figure="outcome-${o.outcome}"] .figure-note`).textContent();
      expect(note, o.outcome).toContain(
        o.completed < o.total
          ? `of ${fmtInt(o.completed)} completed · ${fmtInt(o.total)} attempts`
          : `of ${fmtInt(o.total)} attempts`,
      );
    }
    // The card says the same: successes of completed, and what was left out.
    const summary = await page
      .locator(`article.outcome[data-outcome="${partial?.outcome}"] [data-rate-summary]`)
      .textContent();
    expect(summary).toContain(`of ${fmtInt(partial?.completed ?? -1)} completed`);
    expect(summary).toContain('not in the rate');
  });

  it("fits the outcome cards' tables inside their cards at common widths", async () => {
    await page.evaluate(() => {
      for (const d of document.querySelectorAll('#panel-outcomes details'))
        (d as HTMLDetailsElement).open = true;
    });
    for (const width of [800, 1280, 1400, 1600, 1920]) {
      await page.setViewportSize({ width, height: 900 });
      const problems = await page.evaluate(() => {
        const found: string[] = [];
        for (const card of document.querySelectorAll<HTMLElement>('#panel-outcomes article.outcome')) {
          const right = card.getBoundingClientRect().right;
          for (const cell of card.querySelectorAll('th, td, .bar-label'))
            if (cell.getBoundingClientRect().right > right + 0.5)
              found.push(`${card.dataset.outcome}: "${cell.textContent}" past the card's edge`);
          // Nothing hidden behind a scroll either: the tables fit.
          for (const scroller of card.querySelectorAll<HTMLElement>('.table-scroll'))
            if (scroller.scrollWidth > scroller.clientWidth + 1)
              found.push(
                `${card.dataset.outcome}: a table ${scroller.scrollWidth - scroller.clientWidth}px too wide`,
              );
          for (const label of card.querySelectorAll<HTMLElement>('.bar-label'))
            if (label.scrollWidth > label.clientWidth + 1)
              found.push(`${card.dataset.outcome}: "${label.textContent}" cut`);
        }
        return found;
      });
      expect(problems, `at ${width} px`).toEqual([]);
    }
    await page.screenshot({ path: artifactPath('dashboard-outcomes-1920.png'), fullPage: true });
    await page.setViewportSize({ width: 1280, height: 900 });
  });

  it('breaks down by a catalog trait of one event, kept in the URL, (none) and other rows labelled', async () => {
    const breakdownRows = () =>
      page
        .locator('#panel-breakdown tbody tr')
        .evaluateAll((rows) =>
          rows.map((r) => [
            r.getAttribute('data-value'),
            r.querySelector('th')?.textContent ?? '',
            r.querySelector('td')?.textContent ?? '',
          ]),
        );
    const expectRows = async (query: Record<string, string>): Promise<Breakdown> => {
      const expected = await api<
        Omit<Breakdown, 'rows'> & { rows: (Breakdown['rows'][number] & { other: boolean })[] }
      >(served, 'breakdown', {
        app: APP,
        from,
        ...query,
      });
      expect(expected.rows.length).toBeGreaterThan(0);
      await expect
        .poll(breakdownRows)
        .toEqual(
          expected.rows.map((r) => [
            r.value,
            r.other
              ? `${r.value} · values under k installs`
              : r.value === '(none)'
                ? '(none) · no value'
                : r.value,
            fmtInt(r.events),
          ]),
        );
      return expected;
    };
    const url = () => new URL(page.url()).searchParams;

    await page.getByRole('tab', { name: 'By trait' }).click();
    // The first catalog event with a groupable trait, and its first such trait.
    await expect.poll(() => url().get('bevent')).toBe('Used legacy syntax');
    expect(url().get('dim')).toBe('trait:docker_run');
    await settled();

    // Telepresence's logins by method.
    await page.locator('#breakdown-event').selectOption('login_success');
    await expect.poll(() => url().get('bevent')).toBe('login_success');
    expect(url().get('dim')).toBe('trait:method');
    expect(await page.locator('#breakdown-trait option').allTextContents()).toEqual(['method']);
    await settled();
    const logins = await expectRows({ dimension: 'trait:method', event: 'login_success' });
    expect(logins.rows.map((r) => r.value)).toContain('browser');
    expect(await page.locator('#panel-breakdown thead th').first().textContent()).toBe('method');
    // The bar is the API's `share`: installs with the value over the selection's installs.
    expect(await page.locator('#panel-breakdown thead th').last().textContent()).toBe('Share of installs');
    // Only events with an enum, boolean or enumList trait are offered (errors, counts and durations are not).
    const events = await page.locator('#breakdown-event option').allTextContents();
    expect(events).toContain('used_gather_logs');
    expect(events).not.toContain('intercept_fail');
    expect(events).not.toContain('connect');

    // A boolean trait most legacy commands leave out: events without it are the labelled (none) row.
    await page.locator('#breakdown-event').selectOption('Used legacy syntax');
    await page.locator('#breakdown-trait').selectOption('run');
    await expect.poll(() => url().get('dim')).toBe('trait:run');
    expect(url().get('bevent')).toBe('Used legacy syntax');
    await settled();
    const legacy = await expectRows({ dimension: 'trait:run', event: 'Used legacy syntax' });
    expect(legacy.rows.map((r) => r.value)).toContain('(none)');

    // The choice survives a reload.
    await page.reload();
    await settled();
    expect(await page.getByRole('tab', { name: 'By trait' }).getAttribute('aria-selected')).toBe('true');
    expect(await page.locator('#breakdown-event').inputValue()).toBe('Used legacy syntax');
    expect(await page.locator('#breakdown-trait').inputValue()).toBe('run');
    await expectRows({ dimension: 'trait:run', event: 'Used legacy syntax' });

    // A context tab again drops the event; its k-folded row is labelled too.
    await page.getByRole('tab', { name: 'OS version' }).click();
    await expect.poll(() => url().get('dim')).toBe('os_version');
    expect(url().get('bevent')).toBeNull();
    await settled();
    const versions = await expectRows({ dimension: 'os_version' });
    expect(versions.rows.some((r) => (r as { other?: boolean }).other)).toBe(true);
    expect(await page.locator('#breakdown-event').count()).toBe(0);
  });

  it('works on a narrow screen (one column) and in dark mode', async () => {
    await page.setViewportSize({ width: 420, height: 900 });
    const columns = await page.evaluate(
      () => getComputedStyle(document.querySelector('.panels') as Element).gridTemplateColumns,
    );
    expect(columns.trim().split(/\s+/)).toHaveLength(1);
    await page.screenshot({ path: artifactPath('dashboard-narrow.png') });
    await page.setViewportSize({ width: 1280, height: 900 });
    const light = await page.evaluate(() => getComputedStyle(document.body).backgroundColor);
    await page.emulateMedia({ colorScheme: 'dark' });
    const dark = await page.evaluate(() => getComputedStyle(document.body).backgroundColor);
    expect(dark).not.toBe(light);
    await page.emulateMedia({ colorScheme: 'light' });
    await page.getByRole('button', { name: /Colour theme/ }).click(); // auto → light
    await page.getByRole('button', { name: /Colour theme/ }).click(); // light → dark
    expect(await page.evaluate(() => document.documentElement.dataset.theme)).toBe('dark');
    expect(await page.evaluate(() => getComputedStyle(document.body).backgroundColor)).toBe(dark);
    await page.screenshot({ path: artifactPath('dashboard-dark.png') });
    expect(pageErrors).toEqual([]);
  });
});
