#!/usr/bin/env node
// The `tp` bin. npm links bins at install time, before anything is built, and skips a bin whose file is
// missing; so the bin is this committed file, which runs the built example (dist/, from `npm run build`).
import { existsSync } from 'node:fs';

const tp = new URL('../dist/main.js', import.meta.url);
if (!existsSync(tp)) {
  process.stderr.write('tp: the example is not built yet; run npm run build first\n');
  process.exit(1);
}
// dist/main.js runs the command line as it loads.
await import(tp.href);
