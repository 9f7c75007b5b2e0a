/** Graceful shutdown on SIGTERM / SIGINT, for the CLI and for embedders. */

export const SHUTDOWN_GRACE_MS = 10_000;

/**
 * Runs `shutdown` once on SIGTERM or SIGINT, then exits 0; exits 1 if it takes longer than the
 * grace period. Also offered to embedders (exported from the package).
 */
export function onShutdownSignal(shutdown: () => Promise<void>, graceMs = SHUTDOWN_GRACE_MS): void {
  let stopping = false;
  const handler = (signal: NodeJS.Signals) => {
    if (stopping) return;
    stopping = true;
    process.stderr.write(`received ${signal}: shutting down\n`);
    const force = setTimeout(() => {
      process.stderr.write('graceful shutdown took too long: exiting\n');
      process.exit(1);
    }, graceMs);
    force.unref();
    shutdown().then(
      () => process.exit(0),
      (e: unknown) => {
        process.stderr.write(`shutdown failed: ${String(e)}\n`);
        process.exit(1);
      },
    );
  };
  process.once('SIGTERM', handler);
  process.once('SIGINT', handler);
}
