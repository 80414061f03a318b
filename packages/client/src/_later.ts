/**
 * A callback in about `ms` that neither keeps the process alive nor uses Node's timers: what an unref'd
 * `setTimeout` does, for a CLI's exit path. A pending `Atomics.waitAsync()` on memory nobody ever
 * notifies times out through V8's platform, whose delayed tasks Node runs on its event loop from an
 * unref'd libuv timer: it wakes a process that lives on (a poll blocked on a socket included), and a process
 * with nothing else to do exits without waiting for it.
 *
 * Why not `setTimeout(...).unref()`: the first timer (or immediate) a process creates makes Node compile
 * its timers and async-hooks internals, ≈ 0.3 ms, a tenth of all the client costs a short CLI that
 * reports (see bench/client-exit.mjs); this costs ≈ 25 µs.
 */

type WaitAsync = (
  array: Int32Array,
  index: number,
  value: number,
  timeoutMs: number,
) => { async: boolean; value: Promise<unknown> | string };

/** Shared by every wait: nothing ever changes or notifies it, so each wait ends by timing out. */
let sleeper: Int32Array | undefined;

/**
 * Call `callback` in about `ms` without holding the process open. Like Node's timers, the wait is timed
 * from the event loop's clock, which a long synchronous stretch leaves behind: it can end sooner (callers
 * that care look at the time). Returns false, and schedules nothing, where `Atomics.waitAsync` is missing:
 * the caller then uses Node's timers.
 */
export function laterUnref(ms: number, callback: () => void): boolean {
  const waitAsync = (Atomics as unknown as { waitAsync?: WaitAsync }).waitAsync;
  if (typeof waitAsync !== 'function' || typeof SharedArrayBuffer !== 'function') return false;
  sleeper ??= new Int32Array(new SharedArrayBuffer(4));
  const wait = waitAsync(sleeper, 0, 0, ms);
  if (!wait.async || typeof wait.value === 'string') return false;
  // A throw must not become an unhandled rejection, which would end the host: callers report their own.
  wait.value.then(
    () => {
      try {
        callback();
      } catch {}
    },
    () => {},
  );
  return true;
}
