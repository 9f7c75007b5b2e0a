/**
 * Writes whose cost has no bound are refused at apply. Apply runs on every replica and cannot be
 * stopped on a timer without making replicas diverge (one replica may finish the statement that
 * another interrupts), and this SQLite build has no deterministic step budget (it omits the
 * progress callback). So the one SQL construct that can run forever — a recursive common table
 * expression — is allowed in a write only when it carries a LIMIT, which SQLite applies to the
 * recursion itself. The rule reads only the statement's text, so every replica and every
 * version of the node decides alike, with or without the interrupt extension.
 *
 * SQLite's rules make the check exact enough: a CTE is recursive when its body is a compound
 * SELECT (UNION / UNION ALL) whose top-level FROM names the CTE itself (with or without the
 * RECURSIVE keyword); the recursive reference may not appear in a subquery. Long but finite
 * writes (large joins) are not refused: docs/ARCHITECTURE.md says what bounds them.
 */
import type { SqlErrorInfo } from './errors.js';
import { checkStatement } from './statement-guard.js';
import type { SqlStatement, Token } from './tokenizer.js';

/**
 * Every static check of one statement of a write: the statement guard, then the bound on its
 * cost. The proposer runs it (a refused write spends no log entry) and apply runs it again (it
 * cannot trust the proposer's version).
 */
export function checkWriteStatement(
  statement: SqlStatement,
  at: WriteCheckAt = 'apply',
): SqlErrorInfo | null {
  return checkStatement(statement, 'write') ?? checkWriteBounds(statement, at);
}

/** `write_recursion_rows_max`'s default: rows a recursive CTE of a write being proposed may make. */
export const WRITE_RECURSION_ROWS_MAX_DEFAULT = 10_000_000;

/**
 * Where a write is checked. A proposal (a write being made, or a client's taken over by a node)
 * needs a recursive CTE's LIMIT to be a whole-number literal; apply only needs a LIMIT, the rule
 * entries already in logs were applied under (`LIMIT ?` with a positive value applied then, and
 * must apply alike when a replica replays it; `LIMIT -1` never ended there either).
 */
export type WriteCheckAt =
  | 'apply'
  | {
      /**
       * A write being proposed: a recursive CTE's LIMIT (plus its OFFSET: those rows are made
       * too) must be whole-number literals adding up to at most this (`write_recursion_rows_max`).
       * Only the proposer checks it (a node's own setting: apply must decide alike everywhere).
       */
      readonly recursionRowsMax: number;
    };

export function checkWriteBounds(statement: SqlStatement, at: WriteCheckAt): SqlErrorInfo | null {
  const t = statement.tokens;
  for (let i = 0; i < t.length; i++) {
    if (!isWord(t[i], 'with')) continue;
    const found = unboundedRecursiveCte(t, i + 1, at);
    if (found === null) continue;
    if (found.rows === null) {
      return {
        code: 'HQL_STATEMENT_NOT_ALLOWED',
        message: `a write may not use the recursive CTE "${found.name}" without a LIMIT of a whole-number literal: its cost has no bound (add one, e.g. LIMIT 1000, to the CTE, or compute the rows with a read; a negative, computed or bound LIMIT is no bound: SQLite reads LIMIT -1 as none)`,
      };
    }
    const max = at === 'apply' ? 0 : at.recursionRowsMax;
    return {
      code: 'HQL_STATEMENT_NOT_ALLOWED',
      message: `the recursive CTE "${found.name}" of a write may make ${found.rows} rows (its LIMIT plus OFFSET), more than write_recursion_rows_max (${max}): every node would apply it while every other write waits (make fewer rows per write, or raise write_recursion_rows_max)`,
    };
  }
  return null;
}

/**
 * The first recursive CTE without a LIMIT that bounds it in the WITH clause starting at `from`:
 * its name, and the rows its literal LIMIT and OFFSET allow when that is too many (null: no
 * literal bound at all).
 */
function unboundedRecursiveCte(
  t: readonly Token[],
  from: number,
  at: WriteCheckAt,
): { name: string; rows: bigint | null } | null {
  let j = from;
  if (isWord(t[j], 'recursive')) j++;
  // Bounded: every round consumes at least the CTE's name.
  while (j < t.length) {
    const nameToken = t[j];
    if (nameToken === undefined || (nameToken.kind !== 'word' && nameToken.kind !== 'quoted')) return null;
    const name = identifier(nameToken);
    j++;
    if (isPunct(t[j], '(')) j = closing(t, j) + 1;
    if (!isWord(t[j], 'as')) return null;
    j++;
    if (isWord(t[j], 'not')) j++;
    if (isWord(t[j], 'materialized')) j++;
    if (!isPunct(t[j], '(')) return null;
    const end = closing(t, j);
    const rows = unboundedRecursion(t, j + 1, end, name, at);
    if (rows !== BOUNDED) return { name, rows };
    j = end + 1;
    if (!isPunct(t[j], ',')) return null;
    j++;
  }
  return null;
}

/** A recursive CTE's rows are bounded (or it is not recursive). */
const BOUNDED = 'bounded';

/**
 * Whether the CTE body in [lo, hiExclusive) is a recursion without the bound `at` asks for:
 * BOUNDED, or the rows its literal LIMIT and OFFSET allow when that is more than a proposal's
 * `recursionRowsMax`, or null when it has no literal bound at all.
 */
function unboundedRecursion(
  t: readonly Token[],
  lo: number,
  hiExclusive: number,
  name: string,
  at: WriteCheckAt,
): typeof BOUNDED | bigint | null {
  let depth = 0;
  let compound = false;
  let selfReference = false;
  let limit: typeof BOUNDED | bigint | null = null;
  for (let k = lo; k < hiExclusive; k++) {
    const tok = t[k] as Token;
    if (isPunct(tok, '(')) depth++;
    else if (isPunct(tok, ')')) depth--;
    if (depth !== 0) continue;
    if (isWord(tok, 'union')) compound = true;
    else if (isWord(tok, 'limit')) {
      if (at === 'apply') limit = BOUNDED;
      else {
        const rows = literalLimitRows(t, k + 1, hiExclusive);
        const within =
          rows !== null && (!Number.isFinite(at.recursionRowsMax) || rows <= BigInt(at.recursionRowsMax));
        limit = rows === null ? null : within ? BOUNDED : rows;
      }
    } else if ((tok.kind === 'word' || tok.kind === 'quoted') && identifier(tok) === name) {
      const before = t[k - 1];
      if (isWord(before, 'from') || isWord(before, 'join') || isPunct(before, ',')) selfReference = true;
    }
  }
  return compound && selfReference ? limit : BOUNDED;
}

/**
 * The rows the LIMIT clause whose expression starts at `at` lets the recursion make: `n`,
 * `n OFFSET m` or `m, n` (LIMIT plus OFFSET: the offset rows are made too), each a decimal
 * literal, and nothing after it in the CTE's body; null when it is not such a bound. Anything
 * else may mean no limit: SQLite takes a negative LIMIT (`-1`, `(SELECT -1)`, a parameter bound
 * to -1, a hex literal of 64 bits set) as none at all, and such a write ran forever on every
 * replica; so did LIMIT 9223372036854775807, a literal only in name.
 */
function literalLimitRows(t: readonly Token[], at: number, end: number): bigint | null {
  const literal = (k: number) => t[k]?.kind === 'number' && /^[0-9]+$/.test(t[k]!.text);
  if (!literal(at)) return null;
  const first = BigInt(t[at]!.text);
  if (at + 1 === end) return first;
  if (!(isWord(t[at + 1], 'offset') || isPunct(t[at + 1], ','))) return null;
  if (!(literal(at + 2) && at + 3 === end)) return null;
  return first + BigInt(t[at + 2]!.text);
}

/** Index of the `)` matching the `(` at `open` (the last token when unbalanced). */
function closing(t: readonly Token[], open: number): number {
  let depth = 0;
  for (let k = open; k < t.length; k++) {
    if (isPunct(t[k], '(')) depth++;
    else if (isPunct(t[k], ')') && --depth === 0) return k;
  }
  return t.length - 1;
}

function isWord(tok: Token | undefined, lower: string): boolean {
  return tok !== undefined && tok.kind === 'word' && tok.text.toLowerCase() === lower;
}

function isPunct(tok: Token | undefined, text: string): boolean {
  return tok !== undefined && tok.kind === 'punct' && tok.text === text;
}

/** SQLite compares identifiers without case (ASCII); quotes are not part of the name. */
function identifier(tok: Token): string {
  const s = tok.kind === 'quoted' ? tok.text.slice(1, -1) : tok.text;
  return s.toLowerCase();
}
