/**
 * Static checks of one statement before it runs, from its tokens.
 *
 * Write mode (commands applied through Raft) rejects what would break the state machine's
 * transaction structure or make replicas diverge even though every replica runs the same text:
 *   - transaction control (BEGIN, COMMIT, END, ROLLBACK, SAVEPOINT, RELEASE): the state machine
 *     owns the transaction and the savepoint of every command;
 *   - ATTACH / DETACH (files outside the replicated database), VACUUM (not in a transaction;
 *     `VACUUM INTO` writes a local file);
 *   - TEMP objects and objects in a schema other than `main`: they live on one connection, are
 *     missing from snapshots and vanish on restart;
 *   - PRAGMAs other than a small allowlist: most change connection settings that would leak
 *     into later commands (`foreign_keys`, `defer_foreign_keys`, `case_sensitive_like`, …) or
 *     report node-local layout (`page_count`, `database_list`);
 *   - identifiers starting with `_hq_` (the state machine's own tables);
 *   - date/time calls with a literal `'localtime'` / `'utc'` modifier and calls of
 *     `total_changes()` / `sqlite_offset()` (the functions also fail at run time, this reports
 *     it before a log entry is spent; see determinism.ts).
 * Read mode (local queries) rejects transaction control, ATTACH/DETACH/VACUUM and PRAGMA writes:
 * a read connection must stay a plain snapshot reader.
 */
import type { SqlErrorInfo } from './errors.js';
import { identifierName, isWord, type SqlStatement, stringValue, type Token } from './tokenizer.js';

export type GuardMode = 'write' | 'read';

const TRANSACTION_CONTROL = ['BEGIN', 'COMMIT', 'END', 'ROLLBACK', 'SAVEPOINT', 'RELEASE'];
const CONNECTION_LEVEL = ['ATTACH', 'DETACH', 'VACUUM'];

/** PRAGMAs allowed in write commands: database-header values and deterministic introspection. */
const WRITE_PRAGMAS: ReadonlySet<string> = new Set([
  'user_version',
  'application_id',
  'table_info',
  'table_xinfo',
  'table_list',
  'index_list',
  'index_info',
  'index_xinfo',
  'foreign_key_list',
  'foreign_key_check',
  'integrity_check',
  'quick_check',
]);

/** Extra PRAGMAs a local read may query (never assign). */
const READ_PRAGMAS: ReadonlySet<string> = new Set([
  ...WRITE_PRAGMAS,
  'schema_version',
  'data_version',
  'page_count',
  'page_size',
  'freelist_count',
  'journal_mode',
  'foreign_keys',
  'compile_options',
  'function_list',
  'collation_list',
  'module_list',
  'pragma_list',
  'database_list',
  'encoding',
]);

/** Date/time functions and the index of their first modifier argument. */
export const DATE_FUNCTIONS: ReadonlyMap<string, number> = new Map([
  ['date', 1],
  ['time', 1],
  ['datetime', 1],
  ['julianday', 1],
  ['unixepoch', 1],
  ['strftime', 2],
  ['timediff', 2],
]);

/** Modifiers that read the node's time zone. */
export const NODE_LOCAL_MODIFIERS: ReadonlySet<string> = new Set(['localtime', 'utc']);

/** Functions whose value depends on the connection's history or the file layout. */
export const NODE_LOCAL_FUNCTIONS: ReadonlySet<string> = new Set(['total_changes', 'sqlite_offset']);

export const RESERVED_PREFIX = '_hq_';

function notAllowed(message: string): SqlErrorInfo {
  return { code: 'HQL_STATEMENT_NOT_ALLOWED', message };
}

export function checkStatement(stmt: SqlStatement, mode: GuardMode): SqlErrorInfo | null {
  const tokens = stmt.tokens;
  const first = tokens[0];
  if (first === undefined) return { code: 'HQL_SQL', message: 'empty statement' };
  // EXPLAIN only describes the statement; nothing runs.
  if (isWord(first, 'EXPLAIN')) return null;
  if (isWord(first, ...TRANSACTION_CONTROL)) {
    return notAllowed(
      `${first.text.toUpperCase()} is not allowed: every command already runs in its own transaction (use a txn command for several statements)`,
    );
  }
  if (isWord(first, ...CONNECTION_LEVEL)) {
    return notAllowed(`${first.text.toUpperCase()} is not allowed on a replicated database`);
  }
  if (isWord(first, 'PRAGMA')) return checkPragma(tokens, mode);
  if (mode === 'read') return null;
  if (isWord(first, 'CREATE')) {
    const err = checkCreate(tokens);
    if (err !== null) return err;
  }
  return checkTokensForWrite(tokens);
}

function checkPragma(tokens: readonly Token[], mode: GuardMode): SqlErrorInfo | null {
  let nameToken = tokens[1];
  if (tokens[2]?.text === '.') {
    const schema = nameToken === undefined ? null : identifierName(nameToken);
    if (schema === null || schema.toLowerCase() !== 'main') {
      return notAllowed(`PRAGMA on schema '${schema ?? ''}' is not allowed: only 'main' is replicated`);
    }
    nameToken = tokens[3];
  }
  const name = nameToken === undefined ? null : identifierName(nameToken)?.toLowerCase();
  if (name === null || name === undefined) return { code: 'HQL_SQL', message: 'PRAGMA without a name' };
  const assigns = tokens.some((t) => t.kind === 'punct' && t.text === '=');
  if (mode === 'write') {
    if (WRITE_PRAGMAS.has(name)) return null;
    return notAllowed(
      `PRAGMA ${name} is not allowed in a replicated write: it changes connection state or reads node-local layout (allowed: ${[...WRITE_PRAGMAS].join(', ')})`,
    );
  }
  if (!READ_PRAGMAS.has(name)) return notAllowed(`PRAGMA ${name} is not allowed on a read connection`);
  if (assigns) return notAllowed(`PRAGMA ${name} = … is not allowed on a read connection`);
  return null;
}

function checkCreate(tokens: readonly Token[]): SqlErrorInfo | null {
  // CREATE [TEMP|TEMPORARY] [UNIQUE] [VIRTUAL] TABLE|INDEX|VIEW|TRIGGER [IF NOT EXISTS] [schema.]name
  let i = 1;
  for (; i < tokens.length && i < 4; i++) {
    const t = tokens[i];
    if (isWord(t, 'TEMP', 'TEMPORARY')) {
      return notAllowed('TEMP objects are not allowed: they are not replicated, snapshotted or persisted');
    }
    if (isWord(t, 'TABLE', 'INDEX', 'VIEW', 'TRIGGER')) break;
  }
  i++;
  if (isWord(tokens[i], 'IF') && isWord(tokens[i + 1], 'NOT') && isWord(tokens[i + 2], 'EXISTS')) i += 3;
  const nameToken = tokens[i];
  if (nameToken !== undefined && tokens[i + 1]?.text === '.') {
    const schema = identifierName(nameToken);
    if (schema !== null && schema.toLowerCase() !== 'main') {
      return notAllowed(`objects in schema '${schema}' are not allowed: only 'main' is replicated`);
    }
  }
  return null;
}

function checkTokensForWrite(tokens: readonly Token[]): SqlErrorInfo | null {
  for (let i = 0; i < tokens.length; i++) {
    const t = tokens[i] as Token;
    const ident = identifierName(t);
    if (ident === null) continue;
    const lower = ident.toLowerCase();
    if (lower.startsWith(RESERVED_PREFIX)) {
      return notAllowed(
        `'${ident}' is reserved for the state machine's own tables (prefix ${RESERVED_PREFIX})`,
      );
    }
    if (t.kind !== 'word' || tokens[i + 1]?.text !== '(') continue;
    if (NODE_LOCAL_FUNCTIONS.has(lower)) {
      return {
        code: 'HQL_NONDETERMINISTIC',
        message: `${lower}() differs between replicas and cannot be used in a write`,
      };
    }
    const firstModifier = DATE_FUNCTIONS.get(lower);
    if (firstModifier !== undefined) {
      const modifier = literalNodeLocalModifier(tokens, i + 1, firstModifier);
      if (modifier !== null) {
        return {
          code: 'HQL_NONDETERMINISTIC',
          message: `${lower}(…, '${modifier}') depends on the node's time zone and cannot be used in a write`,
        };
      }
    }
  }
  return null;
}

/** Looks at the direct string-literal arguments of the call whose '(' is at `open`. */
function literalNodeLocalModifier(
  tokens: readonly Token[],
  open: number,
  firstModifier: number,
): string | null {
  let depth = 0;
  let arg = 0;
  for (let j = open; j < tokens.length; j++) {
    const t = tokens[j] as Token;
    if (t.kind === 'punct' && t.text === '(') depth++;
    else if (t.kind === 'punct' && t.text === ')') {
      depth--;
      if (depth === 0) return null;
    } else if (depth === 1 && t.kind === 'punct' && t.text === ',') arg++;
    else if (depth === 1 && t.kind === 'string' && arg >= firstModifier) {
      const v = stringValue(t).trim().toLowerCase();
      if (NODE_LOCAL_MODIFIERS.has(v)) return v;
    }
  }
  return null;
}
