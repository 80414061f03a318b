/**
 * A tiny FIFO: each task starts once the one before it has settled, in call order; a failed task does not
 * stop the queue (its caller gets the failure). The DuckDB store's connections and write path, the
 * outage journal's files, the journaled store's appends and drains, and the API's replays and erasures
 * each run through one.
 */
export function createSerialQueue() {
  let tail: Promise<unknown> = Promise.resolve();
  let pending = 0;
  // Grows when a task starts and when it ends: equal readings mean no task ran or was running between them.
  let transitions = 0;
  return {
    run<T>(task: () => Promise<T>): Promise<T> {
      pending++;
      const result = tail.then(() => {
        transitions++;
        return task();
      });
      const settled = () => {
        transitions++;
        pending--;
      };
      tail = result.then(settled, settled);
      return result;
    },
    /** Tasks waiting or running. */
    get pending() {
      return pending;
    },
    get transitions() {
      return transitions;
    },
    /** Settles once every task queued so far has. */
    idle(): Promise<unknown> {
      return tail;
    },
  };
}

export type SerialQueue = ReturnType<typeof createSerialQueue>;
