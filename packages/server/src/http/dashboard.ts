import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import fastifyStatic from '@fastify/static';
import type { FastifyInstance } from 'fastify';

/**
 * The dashboard's only permissions: its own scripts, styles and API, nothing inline, no plugins, no
 * framing, and Trusted Types so that no code path can turn a string into markup.
 */
export const DASHBOARD_CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "font-src 'self'",
  "connect-src 'self'",
  "base-uri 'none'",
  "form-action 'self'",
  "frame-ancestors 'none'",
  "object-src 'none'",
  "require-trusted-types-for 'script'",
  "trusted-types 'none'",
].join('; ');

/** Hashed asset names change with their content: cache them for a year. */
const IMMUTABLE = 'public, max-age=31536000, immutable';
/** The page itself names the current assets: always revalidate it. */
const REVALIDATE = 'no-cache';

export interface DashboardOptions {
  /** The built dashboard (`packages/dashboard/dist`). @default `TELEMARK_DASHBOARD_DIR`, else the workspace's build */
  readonly root?: string;
}

export function defaultDashboardRoot(): string {
  return (
    process.env.TELEMARK_DASHBOARD_DIR ?? fileURLToPath(new URL('../../../dashboard/dist/', import.meta.url))
  );
}

function securityHeaders(set: (name: string, value: string) => unknown): void {
  set('Content-Security-Policy', DASHBOARD_CSP);
  set('X-Content-Type-Options', 'nosniff');
  set('Referrer-Policy', 'no-referrer');
  set('X-Frame-Options', 'DENY');
  set('Cross-Origin-Opener-Policy', 'same-origin');
}

/**
 * Serves the built dashboard at `/`. Only the files that exist get routes (no catch-all), so every
 * other path keeps the collector's own 404. When the dashboard is not built, `/` says how to build it.
 */
export async function registerDashboard(app: FastifyInstance, options: DashboardOptions = {}): Promise<void> {
  const root = options.root ?? defaultDashboardRoot();
  if (!existsSync(join(root, 'index.html'))) {
    app.get('/', async (_request, reply) => {
      securityHeaders((name, value) => reply.header(name, value));
      return reply
        .code(404)
        .type('text/plain; charset=utf-8')
        .header('Cache-Control', REVALIDATE)
        .send(
          `The dashboard is not built (no ${join(root, 'index.html')}). Run \`npm run build\` in the Telemark checkout, then restart \`telemark serve\`.\n`,
        );
    });
    return;
  }
  await app.register(fastifyStatic, {
    root,
    prefix: '/',
    wildcard: false,
    index: ['index.html'],
    decorateReply: false,
    cacheControl: false,
    dotfiles: 'deny',
    setHeaders(res, path) {
      securityHeaders((name, value) => res.setHeader(name, value));
      res.setHeader('Cache-Control', /[\\/]assets[\\/]/.test(path) ? IMMUTABLE : REVALIDATE);
    },
  });
}
