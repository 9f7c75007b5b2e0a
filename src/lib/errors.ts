/**
 * The error base of hiqlite. Every error a user can see has a stable `code` (documented in
 * docs/ERRORS.md) and says whether retrying the same call is safe.
 */
export type ErrorCode =
  | 'HQL_NOT_LEADER'
  | 'HQL_OVERLOADED'
  | 'HQL_PROPOSAL_DROPPED'
  | 'HQL_LEADERSHIP_TRANSFER'
  | 'HQL_CONFIG_CHANGE_PENDING'
  | 'HQL_INVALID_CONFIG_CHANGE'
  | 'HQL_ENTRY_TOO_LARGE'
  | 'HQL_INVALID_CONFIG'
  | 'HQL_CORRUPTION'
  | 'HQL_IO'
  | 'HQL_CLOSED';

export class HiqliteError extends Error {
  override readonly name: string = 'HiqliteError';
  readonly code: ErrorCode;
  /** True when repeating the same call cannot apply it twice and may succeed. */
  readonly retryable: boolean;

  constructor(code: ErrorCode, message: string, options: { retryable: boolean; cause?: unknown }) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.retryable = options.retryable;
  }
}
