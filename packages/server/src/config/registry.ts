import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { type Catalog, CatalogError, catalogFromJSON } from 'telemark';
import { telepresence } from 'telemark/catalogs/telepresence';
import { z } from 'zod';
import { errorMessage } from '../errors.js';
import type { AppEntry, AppRegistry, RateLimit } from './registry-types.js';

/** Catalogs shipped with the collector, usable by name (`"catalog": "builtin:telepresence2"`). */
export const BUILTIN_CATALOGS: ReadonlyMap<string, Catalog> = new Map<string, Catalog>([
  ['telepresence2', telepresence as unknown as Catalog],
]);

/** Apps registered even with an empty config: Telepresence 2 sends no write key, so it is keyless. */
const BUILTIN_APPS: Readonly<Record<string, { readonly allowKeyless: boolean }>> = {
  telepresence2: { allowKeyless: true },
};

/** An app's name: what the registry accepts, so what any stored row can carry. */
export const APP_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

/** The problem with an app's name in the config (`apps.<name>`), if any. */
export const appNameProblem = (name: string): string | undefined =>
  APP_NAME.test(name) ? undefined : `apps.${name}: app names are 1–64 letters, digits, ".", "_" or "-"`;
/**
 * The slowest rate a bucket may refill at: one event per 1,000 s. A slower one names waits of days (a
 * burst of 10,000 at 1e-25/s asked for a Retry-After of 1e25 s until 2026-11-29); refusing an app's
 * traffic is done by `enabled: false` (or taking it out of the config), not by a rate near 0.
 */
const MIN_RATE_PER_SECOND = 0.001;

/** A token bucket's `{perSecond, burst}`, the top-level `rateLimits` and each app's. */
export const rateLimitSchema = z.strictObject({
  perSecond: z
    .number()
    .min(
      MIN_RATE_PER_SECOND,
      `must be at least ${MIN_RATE_PER_SECOND} (one event per 1,000 s): set ${MIN_RATE_PER_SECOND} or more; to refuse an app's traffic, set the app's "enabled": false`,
    ),
  burst: z.number().int().positive(),
});

export const appConfigSchema = z.strictObject({
  /** `false` removes a built-in app. */
  enabled: z.boolean().optional(),
  /** A catalog JSON file (relative to the config file), `builtin:<name>`, or the catalog inline. */
  catalog: z.union([z.string().min(1), z.record(z.string(), z.unknown())]).optional(),
  writeKeys: z.array(z.string().min(8, 'write keys have at least 8 characters').max(256)).optional(),
  allowKeyless: z.boolean().optional(),
  latestVersion: z.string().min(1).max(64).optional(),
  notices: z
    .array(
      z.strictObject({
        id: z.string().min(1).max(100),
        text: z.string().min(1).max(2000),
        level: z.enum(['info', 'warn']).optional(),
      }),
    )
    .optional(),
  disableUntil: z.iso.datetime({ offset: true }).optional(),
  rateLimits: z
    .strictObject({ perWriteKey: rateLimitSchema, perInstall: rateLimitSchema })
    .partial()
    .optional(),
  retentionDays: z.number().int().min(0).optional(),
});

export type AppConfig = z.infer<typeof appConfigSchema>;

function loadCatalog(
  name: string,
  ref: AppConfig['catalog'],
  baseDir: string,
  problems: string[],
): Catalog | undefined {
  const where = `apps.${name}.catalog`;
  if (ref === undefined) {
    const builtin = BUILTIN_CATALOGS.get(name);
    if (!builtin) problems.push(`${where}: required (a catalog JSON file, or the catalog inline)`);
    return builtin;
  }
  let json: unknown = ref;
  if (typeof ref === 'string') {
    if (ref.startsWith('builtin:')) {
      const builtin = BUILTIN_CATALOGS.get(ref.slice('builtin:'.length));
      if (!builtin)
        problems.push(
          `${where}: no built-in catalog "${ref}"; known: ${[...BUILTIN_CATALOGS.keys()].map((k) => `builtin:${k}`).join(', ')}`,
        );
      return builtin;
    }
    const path = resolve(baseDir, ref);
    try {
      json = JSON.parse(readFileSync(path, 'utf8'));
    } catch (error) {
      problems.push(`${where}: cannot load ${path} (${errorMessage(error)})`);
      return undefined;
    }
  }
  try {
    return catalogFromJSON(json);
  } catch (error) {
    if (error instanceof CatalogError) for (const p of error.problems) problems.push(`${where}: ${p}`);
    else problems.push(`${where}: ${errorMessage(error)}`);
    return undefined;
  }
}

/**
 * Build the apps registry from the config's `apps` map, merged over the built-in apps. Problems are
 * collected (not thrown) so the caller reports every one of them at once.
 */
export function buildAppRegistry(
  apps: Readonly<Record<string, AppConfig>>,
  options: { baseDir: string; defaultRateLimits: { perWriteKey: RateLimit; perInstall: RateLimit } },
): { registry: AppRegistry; problems: string[] } {
  const problems: string[] = [];
  const byName = new Map<string, AppEntry>();
  /** Which app each write key went to first: checked whether or not that app's catalog loads. */
  const keyOwner = new Map<string, string>();
  const names = new Set([...Object.keys(BUILTIN_APPS), ...Object.keys(apps)]);
  for (const name of names) {
    const config: AppConfig = Object.hasOwn(apps, name) ? (apps[name] as AppConfig) : {};
    if (config.enabled === false) continue;
    // An invalid name is never registered, but its keys and catalog are checked all the same: until
    // 2026-11-29 their problems showed only once the name was fixed.
    const nameProblem = appNameProblem(name);
    if (nameProblem) problems.push(nameProblem);
    // Keys first: their problems are independent of the catalog's, and all are reported together.
    const writeKeys = config.writeKeys ?? [];
    const allowKeyless = config.allowKeyless ?? BUILTIN_APPS[name]?.allowKeyless ?? false;
    if (writeKeys.length === 0 && !allowKeyless)
      problems.push(
        `apps.${name}: give it writeKeys, or set "allowKeyless": true (with neither, nothing could be ingested for it)`,
      );
    for (const key of writeKeys) {
      const other = keyOwner.get(key);
      if (other === undefined) keyOwner.set(key, name);
      else if (other !== name)
        problems.push(
          `apps.${name}.writeKeys: a write key is also used by app "${other}"; keys must be unique`,
        );
    }
    const catalog = loadCatalog(name, config.catalog, options.baseDir, problems);
    if (!catalog) continue;
    if (catalog.app !== name) {
      problems.push(
        `apps.${name}.catalog: the catalog is for app "${catalog.app}"; register it as apps.${catalog.app}`,
      );
      continue;
    }
    if (nameProblem) continue;
    const entry: AppEntry = Object.freeze({
      name,
      catalog,
      writeKeys: Object.freeze([...writeKeys]),
      allowKeyless,
      ...(config.latestVersion ? { latestVersion: config.latestVersion } : {}),
      notices: Object.freeze((config.notices ?? []).map((n) => Object.freeze({ ...n }))),
      ...(config.disableUntil ? { disableUntil: new Date(config.disableUntil).toISOString() } : {}),
      rateLimits: Object.freeze({
        perWriteKey: Object.freeze({
          ...options.defaultRateLimits.perWriteKey,
          ...config.rateLimits?.perWriteKey,
        }),
        perInstall: Object.freeze({
          ...options.defaultRateLimits.perInstall,
          ...config.rateLimits?.perInstall,
        }),
      }),
      retentionDays: config.retentionDays ?? 0,
    });
    byName.set(name, entry);
  }
  return { registry: appRegistryOf([...byName.values()]), problems };
}

/**
 * A registry over entries already checked (`buildAppRegistry` made them, and refused shared keys): also
 * how an ingest worker gets the collector's registry, from the entries posted to it.
 */
export function appRegistryOf(entries: readonly AppEntry[]): AppRegistry {
  const byName = new Map<string, AppEntry>();
  const byKey = new Map<string, AppEntry>();
  for (const entry of entries) {
    byName.set(entry.name, entry);
    for (const key of entry.writeKeys) byKey.set(key, entry);
  }
  const list = Object.freeze([...entries]);
  return Object.freeze({
    get: (name: string) => byName.get(name),
    byWriteKey: (key: string) => byKey.get(key),
    list: () => list,
  });
}

/** The registry a running collector serves from: one object, whose entries a config reload replaces. */
export interface LiveAppRegistry extends AppRegistry {
  /** Serve `next`'s apps from now on: every holder of this object sees them at its next call. */
  replace(next: AppRegistry): void;
}

/**
 * A registry that forwards to the one it was last given. Everything on the collector's thread (ingest
 * routes, Metriton's direct path, the query API, retention) holds this one object, so a reload swaps the
 * apps for all of them at once, between two requests; the ingest workers get the entries posted.
 */
export function liveAppRegistry(initial: AppRegistry): LiveAppRegistry {
  // Its own copy of the entries it is given, not the registry object: given itself (a reload with the
  // collector's own `config`) or another live one, it forwarded to itself for ever (every request a
  // stack overflow), or followed another collector's reloads that its ingest workers never got.
  let current = appRegistryOf(initial.list());
  return Object.freeze({
    get: (name: string) => current.get(name),
    byWriteKey: (key: string) => current.byWriteKey(key),
    list: () => current.list(),
    replace(next: AppRegistry) {
      current = appRegistryOf(next.list());
    },
  });
}
