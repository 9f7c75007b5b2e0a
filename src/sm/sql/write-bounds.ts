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

/**
 * Where a write is checked. A proposal (a write being made, or a client's taken over by a node)
 * needs a recursive CTE's LIMIT to be a whole-number literal; apply only needs a LIMIT, the rule
 * entries already in logs were applied under (`LIMIT ?` with a positive value applied then, and
 * must apply alike when a replica replays it; `LIMIT -1` never ended there either).
 */
export type WriteCheckAt = 'proposal' | 'apply';

export function checkWriteBounds(statement: SqlStatement, at: WriteCheckAt): SqlErrorInfo | null {
  const t = statement.tokens;
  for (let i = 0; i < t.length; i++) {
    if (!isWord(t[i], 'with')) continue;
    const name = unboundedRecursiveCte(t, i + 1, at);
    if (name !== null) {
      return {
        code: 'HQL_STATEMENT_NOT_ALLOWED',
        message: `a write may not use the recursive CTE "${name}" without a LIMIT of a whole-number literal: its cost has no bound (add one, e.g. LIMIT 1000, to the CTE, or compute the rows with a read; a negative, computed or bound LIMIT is no bound: SQLite reads LIMIT -1 as none)`,
      };
    }
  }
  return null;
}

/** The name of the first recursive CTE without LIMIT in the WITH clause starting at `from`. */
function unboundedRecursiveCte(t: readonly Token[], from: number, at: WriteCheckAt): string | null {
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
    if (isUnboundedRecursion(t, j + 1, end, name, at)) return name;
    j = end + 1;
    if (!isPunct(t[j], ',')) return null;
    j++;
  }
  return null;
}

function isUnboundedRecursion(
  t: readonly Token[],
  lo: number,
  hiExclusive: number,
  name: string,
  at: WriteCheckAt,
): boolean {
  let depth = 0;
  let compound = false;
  let selfReference = false;
  let limit = false;
  for (let k = lo; k < hiExclusive; k++) {
    const tok = t[k] as Token;
    if (isPunct(tok, '(')) depth++;
    else if (isPunct(tok, ')')) depth--;
    if (depth !== 0) continue;
    if (isWord(tok, 'union')) compound = true;
    else if (isWord(tok, 'limit')) limit = at === 'apply' || literalLimit(t, k + 1, hiExclusive);
    else if ((tok.kind === 'word' || tok.kind === 'quoted') && identifier(tok) === name) {
      const before = t[k - 1];
      if (isWord(before, 'from') || isWord(before, 'join') || isPunct(before, ',')) selfReference = true;
    }
  }
  return compound && selfReference && !limit;
}

/**
 * Whether the LIMIT clause whose expression starts at `at` is a bound: `n`, `n OFFSET m` or
 * `m, n`, each a decimal literal, and nothing after it in the CTE's body. Anything else may mean
 * no limit: SQLite takes a negative LIMIT (`-1`, `(SELECT -1)`, a parameter bound to -1, a hex
 * literal of 64 bits set) as none at all, and such a write ran forever on every replica.
 */
function literalLimit(t: readonly Token[], at: number, end: number): boolean {
  const literal = (k: number) => t[k]?.kind === 'number' && /^[0-9]+$/.test(t[k]!.text);
  if (!literal(at)) return false;
  if (at + 1 === end) return true;
  if (!(isWord(t[at + 1], 'offset') || isPunct(t[at + 1], ','))) return false;
  return literal(at + 2) && at + 3 === end;
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
