/** Graceful shutdown on SIGTERM / SIGINT (and SIGHUP for the CLI), for the CLI and for embedders. */

export const SHUTDOWN_GRACE_MS = 10_000;

/** The signals an embedder's `onShutdownSignal` stops on by default. */
export const SHUTDOWN_SIGNALS: readonly NodeJS.Signals[] = ['SIGTERM', 'SIGINT'];

/**
 * The signals the `hiqlite` command's long-running commands (`serve`, `dev`, `proxy`) stop on
 * gracefully: SIGHUP too, the hang-up of the terminal they run in (its default action ended the
 * node at once, without the graceful stop; found by an outside probe).
 */
export const CLI_STOP_SIGNALS: readonly NodeJS.Signals[] = ['SIGTERM', 'SIGINT', 'SIGHUP'];

/**
 * Runs `shutdown` once on the first of `signals` (SIGTERM or SIGINT by default), then exits 0;
 * exits 1 if it takes longer than the grace period. A signal repeated meanwhile (a second
 * Ctrl-C) does not cut the graceful stop short: it is said and ignored (only SIGKILL stops the
 * process at once). Also offered to embedders (exported from the package).
 */
export function onShutdownSignal(
  shutdown: () => Promise<void>,
  graceMs = SHUTDOWN_GRACE_MS,
  signals: readonly NodeJS.Signals[] = SHUTDOWN_SIGNALS,
): void {
  let stopping = false;
  const handler = (signal: NodeJS.Signals) => {
    if (stopping) {
      process.stderr.write(
        `received ${signal} again: already shutting down (at most ${Math.ceil(graceMs / 1000)} s; SIGKILL stops at once)\n`,
      );
      return;
    }
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
  for (const s of signals) process.on(s, handler);
  releaseStopSignals();
}

let holding: ((signal: NodeJS.Signals) => void) | null = null;

/**
 * The `hiqlite` command's entry, for a long-running command: `onSignal` answers SIGTERM / SIGINT
 * until the command has installed its own handlers and calls releaseStopSignals. The hand-over
 * leaves no moment without a listener: when the last one of a signal goes, Node restores the
 * default action (exit 143, silent) and drops a signal caught but not yet dispatched (ignored:
 * found by an outside probe, a SIGTERM at 0.4 s after `hiqlite serve` or `dev` started did one or
 * the other when the entry removed its handlers before the command installed its own).
 */
export function holdStopSignals(onSignal: (signal: NodeJS.Signals) => void): void {
  holding = onSignal;
  for (const s of CLI_STOP_SIGNALS) process.on(s, onSignal);
}

/** The command's own handlers are installed: the entry's go (holdStopSignals). */
export function releaseStopSignals(): void {
  if (holding === null) return;
  for (const s of CLI_STOP_SIGNALS) process.off(s, holding);
  holding = null;
}
