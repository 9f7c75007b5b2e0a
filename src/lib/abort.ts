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
  signal.addEventListener('abort', fn, { once: true });
  return () => signal.removeEventListener('abort', fn);
}

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
