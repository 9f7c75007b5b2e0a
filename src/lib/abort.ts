/**
 * `fn` once `signal` aborts — at once (synchronously) when it already has. A listener added to
 * an aborted signal never fires, so code that adds one after an `await` misses an abort that
 * came meanwhile and waits on; this is the one way to listen. Returns the removal.
 */
export function whenAborted(signal: AbortSignal | undefined, fn: () => void): () => void {
  if (signal === undefined) return () => {};
  if (signal.aborted) {
    fn();
    return () => {};
  }
  // One listener per signal, however many calls wait on it: an application that passes one
  // signal to a dozen lock() calls got Node's MaxListenersExceededWarning (more than 10
  // listeners: "a possible memory leak"), found by an outside probe.
  let waiting = waiters.get(signal);
  if (waiting === undefined) {
    const fns = new Set<() => void>();
    waiting = fns;
    waiters.set(signal, fns);
    signal.addEventListener(
      'abort',
      () => {
        waiters.delete(signal);
        // A wait removed by an earlier one's call is not called (as an event listener removed
        // during the dispatch is not).
        for (const f of [...fns]) if (fns.has(f)) f();
      },
      { once: true },
    );
  }
  // A wrapper per call: the same fn twice is two waits, each removed on its own.
  const entry = () => fn();
  waiting.add(entry);
  return () => {
    waiting.delete(entry);
  };
}

/** The calls waiting on each signal (whenAborted): one abort listener per signal. */
const waiters = new WeakMap<AbortSignal, Set<() => void>>();

/**
 * `p`, or a rejection with `error()` as soon as `signal` aborts (at once when it has); `p`'s own
 * outcome is then dropped. Without a signal, `p` itself.
 */
export function raceAbort<T>(p: Promise<T>, signal: AbortSignal | undefined, error: () => Error): Promise<T> {
  if (signal === undefined) return p;
  return new Promise<T>((resolve, reject) => {
    const stop = whenAborted(signal, () => {
      p.catch(() => {});
      reject(error());
    });
    p.then(
      (v) => {
        stop();
        resolve(v);
      },
      (e: unknown) => {
        stop();
        reject(e);
      },
    );
  });
}
