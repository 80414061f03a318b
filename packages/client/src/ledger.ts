/**
 * The local ledger: the last payloads actually delivered (answered 2xx), so anyone can audit what left the
 * machine. Bounded by entries and bytes; only the lock holder (sender or flush) writes it.
 */
import fs from 'node:fs';
import path from 'node:path';
import { readTextIfExists, writeFileAtomic } from './_fs.js';
import { FILES } from './paths.js';
import type { WireMessage } from './wire.js';

export const LEDGER_LIMITS = Object.freeze({
  maxEntries: 50,
  maxBytes: 256 * 1024,
  maxEntryBytes: 128 * 1024,
});

export interface LedgerEntry {
  readonly sentAt: string;
  readonly endpoint: string;
  readonly status: number;
  readonly accepted: number;
  readonly duplicate: number;
  readonly rejected: number;
  /** The messages as sent (the first ones, when the batch was larger than one entry may be). */
  readonly messages: readonly WireMessage[];
  /** Messages of the batch not kept in this entry because of the size bound. */
  readonly omitted: number;
}

export function appendLedger(configDir: string, entry: Omit<LedgerEntry, 'omitted'>): void {
  const kept: WireMessage[] = [];
  let bytes = 0;
  for (const message of entry.messages) {
    const size = JSON.stringify(message).length;
    if (bytes + size > LEDGER_LIMITS.maxEntryBytes) break;
    kept.push(message);
    bytes += size;
  }
  const line = JSON.stringify({ ...entry, messages: kept, omitted: entry.messages.length - kept.length });
  const file = path.join(configDir, FILES.ledger);
  const existing = (readTextIfExists(file) ?? '').split('\n').filter((l) => l !== '');
  existing.push(line);
  let total = existing.reduce((sum, l) => sum + l.length + 1, 0);
  while (
    existing.length > 1 &&
    (existing.length > LEDGER_LIMITS.maxEntries || total > LEDGER_LIMITS.maxBytes)
  )
    total -= (existing.shift()?.length ?? 0) + 1;
  writeFileAtomic(file, `${existing.join('\n')}\n`);
}

export function readLedger(configDir: string): LedgerEntry[] {
  let text: string | undefined;
  try {
    text = fs.readFileSync(path.join(configDir, FILES.ledger), 'utf8');
  } catch {
    return [];
  }
  const entries: LedgerEntry[] = [];
  for (const line of text.split('\n')) {
    if (!line) continue;
    try {
      entries.push(JSON.parse(line) as LedgerEntry);
    } catch {}
  }
  return entries;
}
