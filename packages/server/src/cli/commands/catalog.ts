import { readFile } from 'node:fs/promises';
import type { Command } from 'commander';
import { type Catalog, catalogFromJSON, catalogToJSON, catalogToMarkdown } from 'telemark';
import { telepresence } from 'telemark/catalogs/telepresence';
import { errorMessage, TelemarkError } from '../../errors.js';

const BUILT_IN: Readonly<Record<string, Catalog>> = { telepresence2: telepresence as unknown as Catalog };

/**
 * A built-in catalog by app name, or a catalog JSON file. A source that is neither — no such file, not
 * JSON, not a valid catalog — is TMK_ERR_CATALOG_FILE naming the source and what went wrong.
 */
async function loadCatalog(source: string): Promise<Catalog> {
  const builtIn = BUILT_IN[source];
  if (builtIn) return builtIn;
  const cannotUse = (why: string) =>
    new TelemarkError('TMK_ERR_CATALOG_FILE', `${JSON.stringify(source)} (${why})`);
  let text: string;
  try {
    text = await readFile(source, 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    throw code === 'ENOENT'
      ? cannotUse(
          `no such file, and no built-in catalog of that name; built-in: ${Object.keys(BUILT_IN).join(', ')}`,
        )
      : cannotUse(`cannot read it: ${errorMessage(error)}`);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    throw cannotUse(`not JSON: ${errorMessage(error)}`);
  }
  try {
    return catalogFromJSON(json);
  } catch (error) {
    throw cannotUse(errorMessage(error));
  }
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
