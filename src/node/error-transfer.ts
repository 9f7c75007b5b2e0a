/**
 * Errors across a thread boundary. Structured cloning keeps an Error's message but not its class
 * or its own fields, so a node on a worker thread (src/client/node-worker.ts) sends errors in this form and
 * the caller's thread rebuilds them: the same class (`instanceof SqlError` holds), `code`,
 * `retryable`, `info`, `problems`, `leaderId`, … and the chain of causes (a failed listen keeps
 * its `syscall`, `code` and `port` for listen-error.ts).
 */

import { HiqliteError } from '../lib/errors.js';
import { EntryDecodeError } from '../protocol/entry-codec.js';
import { ProtocolError } from '../protocol/protocol-error.js';
import { CacheError } from '../sm/cache/errors.js';
import { SqlError } from '../sm/sql/errors.js';
import { LogCorruptionError } from '../storage/storage-errors.js';
import {
  HandshakeError,
  PeerUnreachableError,
  SnapshotTransferError,
} from '../transport/transport-errors.js';
import { ConfigError } from './config/config-errors.js';

export interface TransferredError {
  /** Which class to rebuild (a key of CLASSES), the nearest known one up the prototype chain. */
  readonly kind: string;
  readonly message: string;
  readonly stack?: string;
  /** The error's own fields that survive structured cloning (functions and class instances do not). */
  readonly props: Record<string, unknown>;
  readonly cause?: TransferredError | { readonly value: unknown };
}

type ErrorClass = abstract new (...args: never[]) => Error;

/** Every error class a user can meet (src/index.ts exports the public ones). */
const CLASSES: Readonly<Record<string, ErrorClass>> = {
  SqlError,
  CacheError,
  ConfigError,
  EntryDecodeError,
  ProtocolError,
  LogCorruptionError,
  HandshakeError,
  PeerUnreachableError,
  SnapshotTransferError,
  HiqliteError,
  TypeError,
  RangeError,
  SyntaxError,
  Error,
};

const KIND_OF = new Map<unknown, string>(Object.entries(CLASSES).map(([k, c]) => [c.prototype, k]));

/** How many causes deep a chain is kept. */
const CAUSE_DEPTH_MAX = 4;

export function transferError(e: unknown, depth = 0): TransferredError {
  if (!(e instanceof Error)) return { kind: 'Error', message: String(e), props: {} };
  let kind = 'Error';
  for (let p: unknown = Object.getPrototypeOf(e); p !== null; p = Object.getPrototypeOf(p)) {
    const k = KIND_OF.get(p);
    if (k !== undefined) {
      kind = k;
      break;
    }
  }
  const props: Record<string, unknown> = {};
  for (const key of Object.keys(e)) {
    if (key === 'cause' || key === 'stack' || key === 'message') continue;
    const v = (e as unknown as Record<string, unknown>)[key];
    if (cloneable(v, 0)) props[key] = v;
  }
  const out: { -readonly [K in keyof TransferredError]: TransferredError[K] } = {
    kind,
    message: e.message,
    props,
  };
  if (e.stack !== undefined) out.stack = e.stack;
  if (e.cause !== undefined && depth < CAUSE_DEPTH_MAX) {
    out.cause = e.cause instanceof Error ? transferError(e.cause, depth + 1) : { value: String(e.cause) };
  }
  return out;
}

export function rebuildError(t: TransferredError): Error {
  const cls = CLASSES[t.kind] ?? Error;
  const e = Object.create(cls.prototype) as Error;
  Object.defineProperty(e, 'message', { value: t.message, writable: true, configurable: true });
  if (t.stack !== undefined)
    Object.defineProperty(e, 'stack', { value: t.stack, writable: true, configurable: true });
  Object.assign(e, t.props);
  if (t.cause !== undefined) {
    const cause = 'kind' in t.cause ? rebuildError(t.cause) : t.cause.value;
    Object.defineProperty(e, 'cause', { value: cause, writable: true, configurable: true });
  }
  return e;
}

/** Plain data only: what postMessage clones as it is. */
function cloneable(v: unknown, depth: number): boolean {
  if (v === null || v === undefined) return true;
  switch (typeof v) {
    case 'string':
    case 'number':
    case 'boolean':
    case 'bigint':
      return true;
    case 'object': {
      if (depth > 4) return false;
      if (v instanceof Uint8Array) return true;
      if (Array.isArray(v)) return v.every((x) => cloneable(x, depth + 1));
      if (Object.getPrototypeOf(v) !== Object.prototype) return false;
      return Object.values(v as object).every((x) => cloneable(x, depth + 1));
    }
    default:
      return false;
  }
}
