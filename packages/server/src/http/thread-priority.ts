import fs from 'node:fs';
import os from 'node:os';

/**
 * Give request handling the CPU first: every thread of this process except the main one — libuv's pool,
 * which runs DuckDB's loads, checkpoints and queries and the intake log's syncs, and V8's GC helpers —
 * gets the nice value `nice` (a lower priority). On a 2-core machine a load or a checkpoint otherwise
 * takes the core the main thread needs, requests queue up behind it, and the queue takes seconds to
 * drain at 80% load: measured p99 200–340 ms with every thread equal, 20–70 ms with nice 10–19
 * (docs/collector.md, "Performance").
 *
 * Linux only (per-thread priorities through `/proc/self/task`); elsewhere nothing changes. Threads
 * started afterwards keep the default, so call it once the store and the listener are up (libuv starts
 * its whole pool at first use). Threads in `keep` (the ingest workers, which serve requests) are left
 * alone. Returns how many threads it changed.
 */
export function lowerBackgroundPriority(nice: number, keep: ReadonlySet<number> = new Set()): number {
  if (nice <= 0 || process.platform !== 'linux') return 0;
  let tids: number[];
  try {
    tids = fs.readdirSync('/proc/self/task').map(Number);
  } catch {
    return 0;
  }
  let changed = 0;
  for (const tid of tids) {
    if (tid === process.pid || keep.has(tid) || !Number.isSafeInteger(tid)) continue;
    try {
      // On Linux a thread id names that one thread here.
      if (os.getPriority(tid) < nice) {
        os.setPriority(tid, nice);
        changed++;
      }
    } catch {
      // The thread ended meanwhile, or the system refused: keep the default.
    }
  }
  return changed;
}
