import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Fastify from 'fastify';
import { describe, expect, it } from 'vitest';
import { DASHBOARD_CSP, registerDashboard } from './dashboard.js';

function builtDashboard(): string {
  const root = mkdtempSync(join(tmpdir(), 'telemark-'));
  mkdirSync(join(root, 'assets'));
  writeFileSync(
    join(root, 'index.html'),
    '<!doctype html><script type="module" src="./assets/index-abc.js"></script>',
  );
  writeFileSync(join(root, 'assets', 'index-abc.js'), 'console.log(1)');
  writeFileSync(join(root, '.secret'), 'no');
  return root;
}

describe('dashboard hosting', () => {
  it('serves the page (revalidated) and hashed assets (immutable) with a strict CSP', async () => {
    const app = Fastify();
    await registerDashboard(app, { root: builtDashboard() });
    const page = await app.inject('/');
    expect(page.statusCode).toBe(200);
    expect(page.headers['content-type']).toContain('text/html');
    expect(page.headers['cache-control']).toBe('no-cache');
    expect(page.headers['content-security-policy']).toBe(DASHBOARD_CSP);
    expect(page.headers['x-content-type-options']).toBe('nosniff');
    expect(page.headers['x-frame-options']).toBe('DENY');
    const asset = await app.inject('/assets/index-abc.js');
    expect(asset.statusCode).toBe(200);
    expect(asset.headers['cache-control']).toBe('public, max-age=31536000, immutable');
    await app.close();
  });

  it('has a CSP without inline scripts or styles, with Trusted Types', () => {
    expect(DASHBOARD_CSP).toContain("script-src 'self'");
    expect(DASHBOARD_CSP).not.toContain('unsafe');
    expect(DASHBOARD_CSP).toContain("require-trusted-types-for 'script'");
    expect(DASHBOARD_CSP).toContain("frame-ancestors 'none'");
  });

  it('leaves every other path to the collector: no catch-all, no dotfiles, no traversal', async () => {
    const app = Fastify();
    await registerDashboard(app, { root: builtDashboard() });
    app.get('/v1/ping', async () => 'pong');
    expect((await app.inject('/v1/ping')).body).toBe('pong');
    expect((await app.inject('/nope')).statusCode).toBe(404);
    expect((await app.inject('/.secret')).statusCode).toBe(404);
    expect((await app.inject('/assets/../../etc/passwd')).statusCode).toBe(404);
    await app.close();
  });

  it('says how to build the dashboard when it is not built', async () => {
    const app = Fastify();
    await registerDashboard(app, { root: join(tmpdir(), 'telemark-no-such-dashboard') });
    const page = await app.inject('/');
    expect(page.statusCode).toBe(404);
    expect(page.body).toContain('npm run build');
    await app.close();
  });
});
