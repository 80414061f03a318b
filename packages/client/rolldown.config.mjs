// The published client: one ESM bundle per public entry, plus the two files the client loads by path
// (the detached sender, spawned as a script, and the machine's facts, required synchronously at exit in
// debug mode), with shared chunks. Loading one file instead of ~25 modules is most of what the client
// costs a CLI that reports nothing (see bench/client-exit.mjs). `tsc -b` still type-checks and writes
// the `.d.ts` files the `types` conditions point at.
//
// Everything lands in one flat directory on purpose: code that finds a sibling file from
// `import.meta.url` (sender/spawn.ts, telemetry.ts) then finds it whichever chunk it ends up in.
import fs from 'node:fs';
import { builtinModules } from 'node:module';
import { defineConfig } from 'rolldown';

const catalogs = Object.fromEntries(
  fs
    .readdirSync(new URL('./src/catalogs/', import.meta.url))
    .filter((file) => file.endsWith('.ts') && !file.includes('.test'))
    .map((file) => [`catalogs-${file.replace(/\.ts$/, '')}`, `src/catalogs/${file}`]),
);

// What a CLI loads at start-up goes in one chunk (`_core`): each file costs resolving, reading, compiling
// and linking, ~0.5 ms and memory each. Left out of it, loaded only by whoever needs them: catalogs (data,
// each in its entry), the scrubber and the delivery code (the sender and `flush()`), the testing helpers.
// Of the scrubber's files only its cuts are core: `report()` cuts an error to what the scrubber will
// read (`cutAtSpace`), the sender cuts what it scrubbed (`scrubToLength`).
const notCore =
  /[\\/]src[\\/](catalogs|testing)[\\/]|[\\/]src[\\/]scrub[\\/](?!_cut\.ts$)|[\\/]src[\\/]sender[\\/](?!spawn|delivery-state)[^\\/]+$|[\\/]src[\\/](machine|os-facts|_node-io)\.ts$/;

export default defineConfig({
  input: {
    index: 'src/index.ts',
    catalog: 'src/catalog/index.ts',
    ...catalogs,
    scrub: 'src/scrub/index.ts',
    wire: 'src/wire.ts',
    testing: 'src/testing/index.ts',
    // Not exports: found by path from the bundles (names fixed, see spawn.ts and telemetry.ts).
    sender: 'src/sender/main.ts',
    machine: 'src/machine.ts',
  },
  platform: 'node',
  // Lets shared code live in an entry (the scrubber in scrub.js) instead of one more chunk.
  preserveEntrySignatures: 'allow-extension',
  external: [/^node:/, ...builtinModules],
  transform: {
    target: 'es2023',
    // Lets spawn.ts tell the bundle from tsc's output and the sources.
    define: { TELEMARK_BUNDLED: 'true' },
  },
  output: {
    dir: 'dist/bundle',
    cleanDir: true,
    format: 'esm',
    entryFileNames: '[name].js',
    chunkFileNames: '_[name]-[hash].js',
    minify: false,
    // Doc comments are for the sources (and the .d.ts): V8 keeps each loaded file's text in memory.
    comments: { legal: true, annotation: true, jsdoc: false },
    codeSplitting: {
      groups: [{ name: 'core', test: (id) => /[\\/]src[\\/]/.test(id) && !notCore.test(id) }],
    },
    sourcemap: false,
  },
});
