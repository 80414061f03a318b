#!/usr/bin/env node
// The `telemark` bin. npm links bins at install time, before anything is built, and skips a bin whose
// file is missing; so the bin is this committed file, which runs the built CLI (dist/, from `npm run
// build`). The CLI's own module imports DuckDB's allocator settings first, so loading it from here
// keeps that order.
import { existsSync } from 'node:fs';

const cli = new URL('../dist/cli/main.js', import.meta.url);
if (!existsSync(cli)) {
  process.stderr.write('telemark: the CLI is not built yet; run npm run build first\n');
  process.exit(1);
}
// dist/cli/main.js runs by itself only when it is the script node was given, which it is not here.
const { runMain } = await import(cli.href);
await runMain();
