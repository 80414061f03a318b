/**
 * A tiny FIFO: each task starts once the one before it has settled, in call order; a failed task does not
 * stop the queue (its caller gets the failure).
 */
export function serial(): <R>(task: () => Promise<R>) => Promise<R> {
  let tail: Promise<unknown> = Promise.resolve();
  return <R>(task: () => Promise<R>): Promise<R> => {
    const result = tail.then(task);
    tail = result.catch(() => undefined);
    return result;
  };
}
