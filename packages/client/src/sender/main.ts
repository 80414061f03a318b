/**
 * The detached sender's entry point. It delivers the spool under the lock until the spool is empty, the
 * endpoint asks for a long wait, or its lifetime is up, then exits. It prints nothing (its stdio is
 * closed) and never throws.
 */
import path from 'node:path';
import { tryAcquireLock } from '../lock.js';
import { FILES } from '../paths.js';
import { listSpool } from '../spool.js';
import { deliver } from './deliver.js';
import { SENDER_ENV, type SenderSettings } from './spawn.js';

/** Backoffs up to this long are waited for in the sender; longer ones are left to a later run. */
const MAX_SLEEP_MS = 30_000;

function readSettings(): SenderSettings | undefined {
  try {
    const value = JSON.parse(process.env[SENDER_ENV] ?? '') as SenderSettings;
    if (typeof value.configDir !== 'string' || typeof value.endpoint !== 'string') return undefined;
    return value;
  } catch {
    return undefined;
  }
}

async function main(): Promise<void> {
  const settings = readSettings();
  if (!settings) return;
  delete process.env[SENDER_ENV];
  process.title = 'telemark-sender';
  const deadline = Date.now() + Math.max(1000, Math.min(settings.lifetimeMs, 10 * 60 * 1000));
  const lockFile = path.join(settings.configDir, FILES.lock);
  const spoolDir = path.join(settings.configDir, FILES.spool);
  // A writer that sealed its segment while we held the lock did not spawn a sender because of us (it
  // seals, then looks at the lock): after releasing, look again and go on while something is ready.
  for (;;) {
    const lock = tryAcquireLock(lockFile);
    if (!lock) return;
    let reason: string;
    try {
      ({ reason } = await deliver(
        { ...settings, env: process.env },
        { deadline, lock, maxSleepMs: MAX_SLEEP_MS },
      ));
    } finally {
      lock.release();
    }
    if (reason !== 'empty' || Date.now() >= deadline) return;
    if (!listSpool(spoolDir).segments.some((s) => s.state === 'ready')) return;
  }
}

process.on('uncaughtException', () => process.exit(0));
process.on('unhandledRejection', () => process.exit(0));
main()
  .catch(() => {})
  .finally(() => process.exit(0));
