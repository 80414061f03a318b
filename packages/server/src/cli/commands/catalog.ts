import { readFile } from 'node:fs/promises';
import type { Command } from 'commander';
import { type Catalog, catalogFromJSON, catalogToJSON, catalogToMarkdown } from 'telemark';
import { telepresence } from 'telemark/catalogs/telepresence';

const BUILT_IN: Readonly<Record<string, Catalog>> = { telepresence2: telepresence as unknown as Catalog };

async function loadCatalog(source: string): Promise<Catalog> {
  const builtIn = BUILT_IN[source];
  if (builtIn) return builtIn;
  return catalogFromJSON(JSON.parse(await readFile(source, 'utf8')));
}

/** `telemark catalog docs|json <app-or-file>`: the "what we collect" page and the JSON form of a catalog. */
export function registerCatalogCommands(program: Command): void {
  const catalog = program
    .command('catalog')
    .description('Print a catalog as a "what we collect" page or as JSON.');
  catalog
    .command('docs')
    .argument('<catalog>', 'a built-in app name (telepresence2) or a catalog JSON file')
    .description('Print the markdown "what we collect" page.')
    .action(async (source: string) => {
      process.stdout.write(catalogToMarkdown(await loadCatalog(source)));
    });
  catalog
    .command('json')
    .argument('<catalog>', 'a built-in app name (telepresence2) or a catalog JSON file')
    .description('Print the catalog as JSON, with its fingerprint.')
    .action(async (source: string) => {
      const c = await loadCatalog(source);
      process.stdout.write(
        `${JSON.stringify({ fingerprint: c.fingerprint, ...catalogToJSON(c) }, null, 2)}\n`,
      );
    });
}
