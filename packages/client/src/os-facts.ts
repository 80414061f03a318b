/**
 * OS name, version and build. Reading them can run a program (`sw_vers`, `reg`), so they are never
 * computed on the command's path: the sender (or a debug print) computes them once and caches them in the
 * config directory, keyed by platform and kernel release so an OS upgrade refreshes them.
 */
import os from 'node:os';
import path from 'node:path';
import { readJsonObject, writeJsonAtomic } from './_fs.js';
import { nodeProbe, nodeRunner } from './_node-io.js';
import { type OsFacts, readOsFacts } from './context/index.js';
import { FILES } from './paths.js';

const UNKNOWN: OsFacts = Object.freeze({ name: 'unknown', version: 'unknown', build: 'unknown' });

function clean(value: unknown): string {
  return typeof value === 'string' && value.trim() !== '' ? value.trim().slice(0, 100) : 'unknown';
}

export function osFactsKey(): string {
  return `${process.platform}:${os.release()}`;
}

/** Cached facts, computing and caching them when missing. Never throws. */
export function cachedOsFacts(configDir: string | undefined, persist: boolean): OsFacts {
  const key = osFactsKey();
  const file = configDir ? path.join(configDir, FILES.osFacts) : undefined;
  try {
    const cached = file ? readJsonObject(file) : undefined;
    if (cached && cached.key === key && cached.facts && typeof cached.facts === 'object') {
      const f = cached.facts as Record<string, unknown>;
      return { name: clean(f.name), version: clean(f.version), build: clean(f.build) };
    }
  } catch {}
  let facts = UNKNOWN;
  try {
    const read = readOsFacts(process.platform, nodeProbe, nodeRunner);
    facts = { name: clean(read.name), version: clean(read.version), build: clean(read.build) };
  } catch {}
  if (file && persist)
    try {
      writeJsonAtomic(file, { key, facts });
    } catch {}
  return facts;
}
