/**
 * The one error of the S3 module. Every failure of a request (an S3 error answer, a dropped
 * connection, a deadline, an answer we cannot read) is an `S3Error` with code `HQL_S3`; what went
 * wrong is in `s3Code` (S3's own code such as `SignatureDoesNotMatch` or `NoSuchKey`, or one of
 * ours below) and `httpStatus` (null when no answer came).
 */
import { HiqliteError } from '../../lib/errors.js';

/** Codes this module gives to failures that are not an S3 error answer. */
export type LocalS3Code =
  /** The connection failed or was dropped before a whole answer arrived. */
  | 'NetworkError'
  /** No answer (or no further body bytes) within `requestTimeoutMs`. */
  | 'RequestDeadline'
  /** The answer was not what the operation expects (missing XML tags, wrong length). */
  | 'InvalidResponse'
  /** A multipart upload would need more than S3's 10,000 parts: raise `partSizeBytes`. */
  | 'TooManyParts'
  /** An object key this module will not send: empty, over 1,024 bytes, a `.` or `..` segment, control characters. */
  | 'InvalidObjectKey';

export interface S3ErrorInit {
  operation: string;
  key: string | null;
  s3Code: string;
  httpStatus: number | null;
  detail: string;
  retryable: boolean;
  attempts: number;
  cause?: unknown;
}

export class S3Error extends HiqliteError {
  override readonly name = 'S3Error';
  readonly operation: string;
  readonly key: string | null;
  /** S3's error code (`AccessDenied`, `NoSuchKey`, …) or a `LocalS3Code`. */
  readonly s3Code: string;
  /** The HTTP status of the answer, or null when none arrived. */
  readonly httpStatus: number | null;
  /** How many times the request was sent. */
  readonly attempts: number;
  /** What went wrong, as the message says it after the status. */
  readonly detail: string;

  constructor(init: S3ErrorInit) {
    const where = init.key === null ? init.operation : `${init.operation} '${init.key}'`;
    const status = init.httpStatus === null ? 'no answer' : `HTTP ${init.httpStatus}`;
    const tries = init.attempts === 1 ? '1 attempt' : `${init.attempts} attempts`;
    super('HQL_S3', `S3 ${where} failed: ${init.s3Code} (${status}): ${init.detail} [${tries}]`, {
      retryable: init.retryable,
      cause: init.cause,
    });
    this.operation = init.operation;
    this.key = init.key;
    this.s3Code = init.s3Code;
    this.httpStatus = init.httpStatus;
    this.attempts = init.attempts;
    this.detail = init.detail;
  }

  /** The same failure, said of a request that was sent `attempts` times in all. */
  afterAttempts(attempts: number): S3Error {
    return new S3Error({
      operation: this.operation,
      key: this.key,
      s3Code: this.s3Code,
      httpStatus: this.httpStatus,
      detail: this.detail,
      retryable: this.retryable,
      attempts,
      cause: this.cause,
    });
  }
}
