/**
 * An error of a CLI command (a wrong argument, a missing setting, a node that did not come up),
 * typed like every other so that it prints as `hiqlite: <code>: <message>` (cli-main.ts).
 */
import { type ErrorCode, HiqliteError } from '../lib/errors.js';

export function cliError(code: ErrorCode, message: string): HiqliteError {
  return new HiqliteError(code, message, { retryable: code === 'HQL_TIMEOUT' || code === 'HQL_UNAVAILABLE' });
}
