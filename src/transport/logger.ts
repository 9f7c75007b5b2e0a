/**
 * The subset of a structured logger the transport uses (pino's `(obj, msg)` shape), so this
 * layer does not depend on a logging library. The runtime passes its pino child logger.
 */
export interface TransportLogger {
  warn(obj: Record<string, unknown>, msg: string): void;
  info(obj: Record<string, unknown>, msg: string): void;
  /** Per-connection events (a lane up, a peer connected): routine, not for the default log. */
  debug(obj: Record<string, unknown>, msg: string): void;
}

export const silentLogger: TransportLogger = {
  warn() {},
  info() {},
  debug() {},
};
