/**
 * At most one log line per `intervalMs` for each kind of event a stranger can cause at will (a
 * refused handshake, a refused login): a line for every one let anyone without a secret grow the
 * node's log by megabytes a minute. The line that is logged carries how many were not.
 * Time comes from `now` (monotonic milliseconds).
 */
/** What strangers cause (refused handshakes) is logged at most once per this long. */
export const STRANGER_LOG_MS = 10_000;

export class LogThrottle {
  private readonly kinds = new Map<string, { atMs: number; suppressed: number }>();

  constructor(
    private readonly intervalMs: number,
    private readonly now: () => number,
  ) {}

  /**
   * Null when the line of this kind is to be left out; otherwise how many were left out since
   * the last one logged (0 for the first).
   */
  admit(kind: string): number | null {
    const t = this.now();
    const k = this.kinds.get(kind);
    if (k === undefined) {
      this.kinds.set(kind, { atMs: t, suppressed: 0 });
      return 0;
    }
    if (t - k.atMs < this.intervalMs) {
      k.suppressed++;
      return null;
    }
    const suppressed = k.suppressed;
    k.atMs = t;
    k.suppressed = 0;
    return suppressed;
  }
}
