/**
 * Parameter binding.
 *
 * Positional (array) parameters: better-sqlite3 only binds anonymous `?` from arrays, and SQLite
 * numbers a named `$2` by order of first appearance (so `SELECT $2, $1` would swap them). The
 * statement is therefore rewritten so that every parameter becomes an anonymous `?`, and the
 * array is expanded to match, following SQLite's numbering:
 *   `?NNN` → parameter NNN; `$N` (digits only) → parameter N, as in PostgreSQL and the Rust
 *   project; `?` → one more than the largest number used so far; a named `:x @x $x` → one more
 *   than the largest so far at its first appearance, the same number afterwards.
 * The array must hold exactly as many values as the largest number.
 *
 * Named (object) parameters: `:name`, `@name` and `$name` all bind the key `name`; a key may
 * also be written with its prefix (`{ ':name': 1 }`).
 */
import { type SqlErrorInfo, sqlError } from './errors.js';
import type { Token } from './tokenizer.js';
import { normalizeValue, type SqlValue, toBindValue } from './values.js';

/** A reference to a value returned by an earlier statement of the same txn (its RETURNING rows). */
export interface StmtRef {
  readonly $ref: readonly [statementIndex: number, rowIndex: number, column: string | number];
}

export type ParamValue = SqlValue | StmtRef;
export type Params = readonly ParamValue[] | Readonly<Record<string, ParamValue>>;

/** The positional form of a statement: its text with anonymous `?` and the expansion order. */
export interface PositionalPlan {
  readonly text: string;
  /** For each `?` of `text`, the 0-based index into the caller's array. */
  readonly order: readonly number[];
  /** How many values the caller must pass (the largest parameter number). */
  readonly expected: number;
}

/** `SQLITE_MAX_VARIABLE_NUMBER` of the bundled SQLite. */
export const PARAMS_MAX = 32766;

export function planPositional(text: string, tokens: readonly Token[]): PositionalPlan | SqlErrorInfo {
  const order: number[] = [];
  const named = new Map<string, number>();
  let maxIndex = 0;
  let out = '';
  let copied = 0;
  for (const t of tokens) {
    if (t.kind !== 'param') continue;
    let index: number;
    if (t.text === '?') {
      index = maxIndex + 1;
    } else if (t.text[0] === '?' || (t.text[0] === '$' && /^\$\d+$/.test(t.text))) {
      index = Number(t.text.slice(1));
      if (!(Number.isSafeInteger(index) && index >= 1 && index <= PARAMS_MAX)) {
        return {
          code: 'HQL_INVALID_PARAMS',
          message: `parameter ${t.text} is out of range 1..${PARAMS_MAX}`,
        };
      }
    } else {
      const known = named.get(t.text);
      index = known ?? maxIndex + 1;
      named.set(t.text, index);
    }
    maxIndex = Math.max(maxIndex, index);
    order.push(index - 1);
    out += `${text.slice(copied, t.start)}?`;
    copied = t.end;
  }
  if (order.length === 0) return { text, order, expected: 0 };
  return { text: out + text.slice(copied), order, expected: maxIndex };
}

export function isStmtRef(v: unknown): v is StmtRef {
  return typeof v === 'object' && v !== null && !(v instanceof Uint8Array) && '$ref' in v;
}

/**
 * A `{ $ref: [statement, row, column] }` of a txn with nothing nested inside: what a client may
 * pass on before the command decoder checks its indexes (a deeper value could overflow the stack
 * of the copy that carries it to another thread).
 */
export function isShallowStmtRef(v: unknown): v is StmtRef {
  if (!isStmtRef(v) || Object.keys(v).length !== 1) return false;
  const ref = (v as { $ref: unknown }).$ref;
  return Array.isArray(ref) && ref.length <= 3 && ref.every((x) => x === null || typeof x !== 'object');
}

export type RefResolver = (ref: StmtRef) => SqlValue;

const noRefs: RefResolver = () => {
  throw sqlError('HQL_INVALID_PARAMS', '$ref parameters are only valid in a txn command');
};

/**
 * Arguments for better-sqlite3: an array matching `plan.text` for positional params, or an
 * object for named params (then the statement's original text is the one to prepare).
 */
export function bindArgs(
  plan: PositionalPlan,
  params: Params | readonly unknown[] | Readonly<Record<string, unknown>>,
  resolve: RefResolver = noRefs,
): unknown[] | Record<string, unknown> {
  if (Array.isArray(params)) {
    const list = params as readonly unknown[];
    if (list.length !== plan.expected) {
      throw sqlError(
        'HQL_INVALID_PARAMS',
        `the statement takes ${plan.expected} positional parameter(s), ${list.length} given`,
      );
    }
    const { order } = plan;
    const args: unknown[] = new Array(order.length);
    for (let i = 0; i < order.length; i++) args[i] = bindValue(list[order[i]!], resolve, order[i]!);
    return args;
  }
  // Null prototype: a parameter named __proto__ stays a key.
  const out: Record<string, unknown> = Object.create(null);
  for (const [key, v] of Object.entries(params as Readonly<Record<string, unknown>>)) {
    out[normalizeParamName(key)] = bindValue(v, resolve, key);
  }
  return out;
}

/**
 * One parameter as better-sqlite3 binds it. The common types go straight through (bytes without
 * a copy: the statement only reads them); booleans and Dates (which reads accept as they are)
 * and everything that cannot be bound go through normalizeValue, which names the parameter
 * (`at`) in its error. Writes arrive here already validated by the command decoder.
 */
function bindValue(v: unknown, resolve: RefResolver, at: number | string): unknown {
  if (typeof v === 'string' || v === null) return v;
  if (typeof v === 'number' || v instanceof Uint8Array) return toBindValue(v);
  if (isStmtRef(v)) return toBindValue(resolve(v));
  return toBindValue(normalizeValue(v, typeof at === 'number' ? `params[${at}]` : `params.${at}`));
}

export function normalizeParamName(key: string): string {
  const c = key[0];
  return c === ':' || c === '@' || c === '$' ? key.slice(1) : key;
}
