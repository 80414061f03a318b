/**
 * Writes in flight: up to `maxInFlight` at once, so one write's key lookup overlaps another's INSERTs.
 * Dedupe stays exact because a write waits for every earlier write that shares a message with it (the
 * later one then finds the earlier one's claims), and writes of disjoint messages cannot affect each
 * other. A task without keys (housekeeping) is a barrier: it waits for everything before it, and
 * everything after it waits for it. A failed task does not stop the queue.
 */
export function createWriteScheduler(maxInFlight: number) {
  interface Entry {
    readonly keys: ReadonlySet<string> | null;
    readonly done: Promise<unknown>;
  }
  const pending = new Set<Entry>();
  let running = 0;
  const slotWaiters: (() => void)[] = [];
  const acquire = async (): Promise<void> => {
    if (running < maxInFlight) {
      running++;
      return;
    }
    await new Promise<void>((resolve) => slotWaiters.push(resolve));
  };
  const release = (): void => {
    const next = slotWaiters.shift();
    if (next) next();
    else running--;
  };
  const conflicts = (a: ReadonlySet<string> | null, b: ReadonlySet<string> | null): boolean => {
    if (a === null || b === null) return true;
    const [small, large] = a.size <= b.size ? [a, b] : [b, a];
    for (const k of small) if (large.has(k)) return true;
    return false;
  };
  return {
    run<T>(task: () => Promise<T>, keys: readonly string[] | null = null): Promise<T> {
      const own = keys === null ? null : new Set(keys);
      const before = [...pending].filter((e) => conflicts(e.keys, own)).map((e) => e.done);
      const result = Promise.all(before).then(async () => {
        await acquire();
        try {
          return await task();
        } finally {
          release();
        }
      });
      const entry: Entry = { keys: own, done: result.catch(() => undefined) };
      pending.add(entry);
      void entry.done.then(() => pending.delete(entry));
      return result;
    },
    idle: (): Promise<unknown> => Promise.all([...pending].map((e) => e.done)),
  };
}
