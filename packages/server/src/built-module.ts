/**
 * The URL of a sibling module as built (`dist/…/x.js`), for worker threads: a worker is started by
 * Node itself, which cannot run the TypeScript sources a test runner loads this package from. Under
 * such a runner (`import.meta.url` ends in `.ts`) the built copy is used; `npm test` builds first.
 */
export function builtModuleUrl(relative: string, base: string): URL {
  const url = new URL(relative, base);
  if (base.endsWith('.ts')) url.pathname = url.pathname.replace(/\/src\/(?!.*\/src\/)/, '/dist/');
  return url;
}
