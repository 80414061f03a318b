import { defineConfig } from 'vite';

/**
 * The dashboard is static files served by the collector at `/`: relative asset URLs, hashed names
 * (cached forever), no inline scripts or styles (the collector's Content-Security-Policy forbids them),
 * no source maps shipped.
 */
export default defineConfig({
  base: './',
  oxc: { jsx: { runtime: 'automatic', importSource: 'preact' } },
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    target: 'es2022',
    assetsInlineLimit: 0,
    cssCodeSplit: false,
    sourcemap: false,
    modulePreload: { polyfill: false },
  },
});
