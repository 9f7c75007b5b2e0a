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
