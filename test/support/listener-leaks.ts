/**
 * Node's "possible memory leak" warnings (MaxListenersExceededWarning) while a test runs: a node
 * that adds a listener per request or per listen to one emitter prints them into its log.
 */
export function watchListenerLeaks(): { leaks(): Promise<string[]>; stop(): void } {
  const warnings: string[] = [];
  const onWarning = (w: Error) => warnings.push(`${w.name}: ${w.message}`);
  process.on('warning', onWarning);
  return {
    /** The leak warnings so far (they are emitted on the next tick, so it waits one). */
    async leaks() {
      await new Promise((r) => setImmediate(r));
      return warnings.filter((w) => w.startsWith('MaxListenersExceededWarning'));
    },
    stop: () => process.off('warning', onWarning),
  };
}
