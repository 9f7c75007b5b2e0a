/**
 * Static checks of one statement from its tokens, before SQLite sees it. This is the first of two
 * layers: access-guard.ts then checks, on the writer connection, what the statement touches
 * according to SQLite's own compiled program and schema. This layer handles what must be decided
 * before anything is prepared, because SQLite acts on some statements while preparing them (most
 * PRAGMAs change the connection at prepare time, also under EXPLAIN), and what fails fast on the
 * proposer without spending a log entry.
 *
 * Names are read the way SQLite reads them: a name may be a bare word, `"x"`, `[x]`, `` `x` `` or
 * a string literal `'x'` (SQLite's grammar accepts a string wherever it takes a name), and is
 * compared with ASCII case folding, as SQLite compares names.
 *
 * Write mode (commands applied through Raft) rejects with HQL_STATEMENT_NOT_ALLOWED:
 *   - EXPLAIN and EXPLAIN QUERY PLAN: the output is bytecode of one SQLite version, and
 *     `EXPLAIN PRAGMA …` changes the connection while being prepared;
 *   - transaction control (BEGIN, COMMIT, END, ROLLBACK, SAVEPOINT, RELEASE): the state machine
 *     owns the transaction and the savepoint of every command;
 *   - ATTACH / DETACH (files outside the replicated database), VACUUM (not in a transaction;
 *     `VACUUM INTO` writes a local file);
 *   - TEMP objects and objects in a schema other than `main`: they live on one connection, are
 *     missing from snapshots and vanish on restart;
 *   - PRAGMAs other than an allowlist, in any spelling (quoted names, `main.`, the call form
 *     `pragma x(1)`); anything that is not exactly `PRAGMA [schema.]name [= value | (value)]`;
 *   - bare or quoted `pragma_*` table-valued functions other than the allowlist's (they report
 *     node-local values: `pragma_data_version`, `pragma_page_count`; `pragma_optimize` writes
 *     statistics from the connection's history; access-guard.ts also recognizes them when
 *     spelled as a string or reached through a view or trigger);
 *   - bare or quoted identifiers starting with `_hq_` (the state machine's own tables; the
 *     authoritative check, which also sees string-spelled names, views and triggers, is
 *     access-guard.ts);
 *   - date/time calls with a literal `'localtime'` / `'utc'` modifier and calls of
 *     `total_changes()` / `sqlite_offset()` (HQL_NONDETERMINISTIC; the functions also fail at
 *     run time, this reports it before a log entry is spent; see determinism.ts).
 * Read mode (local queries) rejects transaction control, ATTACH/DETACH/VACUUM, PRAGMAs outside
 * the read allowlist, any PRAGMA argument that would assign a setting, and bare or quoted
 * `pragma_*` functions outside the read allowlist; `EXPLAIN [QUERY PLAN] x` is checked as `x`.
 * A read connection must stay a plain snapshot reader; it is also opened read-only with
 * `query_only`, and a pragma function cannot assign a setting (SQLite gives the setting pragmas'
 * functions no argument).
 */
import type { SqlErrorInfo } from './errors.js';
import { isWord, nameOf, type SqlStatement, stringValue, type Token } from './tokenizer.js';

export type GuardMode = 'write' | 'read';

const TRANSACTION_CONTROL = ['BEGIN', 'COMMIT', 'END', 'ROLLBACK', 'SAVEPOINT', 'RELEASE'];
const CONNECTION_LEVEL = ['ATTACH', 'DETACH', 'VACUUM'];

/**
 * What a PRAGMA's argument does: `assign` sets a value (a database-header value for the write
 * allowlist), `name` names an object to report on (never changes anything), `none` takes no
 * argument here (a report: an argument would set the connection's value).
 */
type PragmaArg = 'assign' | 'name' | 'none';

/** PRAGMAs allowed in write commands: database-header values and deterministic introspection. */
const WRITE_PRAGMAS: ReadonlyMap<string, PragmaArg> = new Map<string, PragmaArg>([
  ['user_version', 'assign'],
  ['application_id', 'assign'],
  ['table_info', 'name'],
  ['table_xinfo', 'name'],
  ['table_list', 'name'],
  ['index_list', 'name'],
  ['index_info', 'name'],
  ['index_xinfo', 'name'],
  ['foreign_key_list', 'name'],
  ['foreign_key_check', 'name'],
  ['integrity_check', 'name'],
  ['quick_check', 'name'],
]);

/** The `pragma_<name>` table-valued functions a write may use: the write allowlist's. */
export const WRITE_PRAGMA_FUNCTIONS: ReadonlySet<string> = new Set(WRITE_PRAGMAS.keys());

/** PRAGMAs a local read may query; a read never assigns (header values included). */
const READ_PRAGMAS: ReadonlyMap<string, PragmaArg> = new Map<string, PragmaArg>([
  ...[...WRITE_PRAGMAS].map(([name, arg]): [string, PragmaArg] => [name, arg === 'assign' ? 'none' : arg]),
  ...[
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
  ].map((name): [string, PragmaArg] => [name, 'none']),
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
/** The migrate command's table: readable by user SQL, written only by the state machine. */
export const MIGRATIONS_TABLE_NAME = '_migrations';

/** SQLite folds only ASCII letters when it compares names; so does the guard. */
export function asciiLower(s: string): string {
  return s.replace(/[A-Z]+/g, (m) => m.toLowerCase());
}

/** A name of the state machine's own tables, which user SQL may not create, alter or write. */
export function isReservedName(name: string): boolean {
  const lower = asciiLower(name);
  return lower.startsWith(RESERVED_PREFIX) || lower === MIGRATIONS_TABLE_NAME;
}

function notAllowed(message: string): SqlErrorInfo {
  return { code: 'HQL_STATEMENT_NOT_ALLOWED', message };
}

export function checkStatement(stmt: SqlStatement, mode: GuardMode): SqlErrorInfo | null {
  return checkTokens(stmt.tokens, mode);
}

function checkTokens(tokens: readonly Token[], mode: GuardMode): SqlErrorInfo | null {
  const first = tokens[0];
  if (first === undefined) return { code: 'HQL_SQL', message: 'empty statement' };
  if (isWord(first, 'EXPLAIN')) {
    if (mode === 'write') {
      return notAllowed('EXPLAIN is not allowed in a replicated write: run it as a query');
    }
    // EXPLAIN only describes the statement, but SQLite prepares it: check what it explains.
    const inner = isWord(tokens[1], 'QUERY') && isWord(tokens[2], 'PLAN') ? 3 : 1;
    if (tokens.length <= inner) return { code: 'HQL_SQL', message: 'EXPLAIN without a statement' };
    return checkTokens(tokens.slice(inner), mode);
  }
  if (isWord(first, ...TRANSACTION_CONTROL)) {
    return notAllowed(
      `${first.text.toUpperCase()} is not allowed: every command already runs in its own transaction (use a txn command for several statements)`,
    );
  }
  if (isWord(first, ...CONNECTION_LEVEL)) {
    return notAllowed(`${first.text.toUpperCase()} is not allowed on a replicated database`);
  }
  if (isWord(first, 'PRAGMA')) return checkPragma(tokens, mode);
  const pragmaFunction = checkPragmaFunctions(tokens, mode);
  if (pragmaFunction !== null) return pragmaFunction;
  if (mode === 'read') return null;
  if (isWord(first, 'CREATE')) {
    const err = checkCreate(tokens);
    if (err !== null) return err;
  }
  return checkTokensForWrite(tokens);
}

/**
 * `PRAGMA [schema .] name [= value | ( value )]`, the whole statement, in SQLite's grammar
 * (parse.y: `nm` is a word, a quoted name or a string; a value is a name, ON/DELETE/DEFAULT or
 * a signed number). Anything else is refused, so a statement the guard did not fully understand
 * is never prepared.
 */
function checkPragma(tokens: readonly Token[], mode: GuardMode): SqlErrorInfo | null {
  let i = 1;
  let name = nameAt(tokens, i);
  if (tokens[i + 1]?.text === '.') {
    const schema = name;
    if (schema === null || asciiLower(schema) !== 'main') {
      return notAllowed(`PRAGMA on schema '${schema ?? ''}' is not allowed: only 'main' is replicated`);
    }
    i += 2;
    name = nameAt(tokens, i);
  }
  if (name === null) return notAllowed('PRAGMA without a name is not allowed');
  const lower = asciiLower(name);
  i++;
  let hasArg = false;
  if (i < tokens.length) {
    const open = tokens[i]!.text;
    if (open !== '=' && open !== '(') return notAllowed(`PRAGMA ${lower}: unexpected '${open}'`);
    i++;
    if (tokens[i]?.text === '-' || tokens[i]?.text === '+') i++;
    const value = tokens[i];
    if (value === undefined || !(value.kind === 'number' || nameOf(value) !== null)) {
      return notAllowed(`PRAGMA ${lower}: the value must be a name or a number`);
    }
    i++;
    if (open === '(') {
      if (tokens[i]?.text !== ')') return notAllowed(`PRAGMA ${lower}: ')' expected`);
      i++;
    }
    if (i !== tokens.length) return notAllowed(`PRAGMA ${lower}: unexpected '${tokens[i]!.text}'`);
    hasArg = true;
  }
  const allowed = mode === 'write' ? WRITE_PRAGMAS : READ_PRAGMAS;
  const arg = allowed.get(lower);
  if (arg === undefined) {
    return notAllowed(
      mode === 'write'
        ? `PRAGMA ${lower} is not allowed in a replicated write: it changes connection state or reads node-local layout (allowed: ${[...WRITE_PRAGMAS.keys()].join(', ')})`
        : `PRAGMA ${lower} is not allowed on a read connection`,
    );
  }
  if (hasArg && arg === 'none') {
    return notAllowed(`PRAGMA ${lower} with an argument is not allowed: it would change the setting`);
  }
  return null;
}

/** The name of the token at `i` if SQLite would read it as a name (`nm`), else null. */
function nameAt(tokens: readonly Token[], i: number): string | null {
  const t = tokens[i];
  return t === undefined ? null : nameOf(t);
}

function checkPragmaFunctions(tokens: readonly Token[], mode: GuardMode): SqlErrorInfo | null {
  const allowed = mode === 'write' ? WRITE_PRAGMAS : READ_PRAGMAS;
  for (const t of tokens) {
    // A string may be data ('pragma_x' as a value); in writes access-guard.ts recognizes the
    // function in the compiled program, however it is spelled.
    if (t.kind !== 'word' && t.kind !== 'quoted') continue;
    const lower = asciiLower(nameOf(t) ?? '');
    if (!lower.startsWith('pragma_')) continue;
    const pragma = lower.slice('pragma_'.length);
    if (allowed.has(pragma)) continue;
    return notAllowed(
      mode === 'write'
        ? `pragma_${pragma} is not allowed in a replicated write: it reports or changes node-local state`
        : `pragma_${pragma} is not allowed on a read connection`,
    );
  }
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
  const name = nameAt(tokens, i);
  if (name !== null && tokens[i + 1]?.text === '.') {
    if (asciiLower(name) !== 'main') {
      return notAllowed(`objects in schema '${name}' are not allowed: only 'main' is replicated`);
    }
    i += 2;
  }
  const objectName = nameAt(tokens, i);
  if (objectName !== null && isReservedName(objectName)) return reserved(objectName);
  return null;
}

function reserved(name: string): SqlErrorInfo {
  return notAllowed(
    `'${name}' is reserved for the state machine's own tables (prefix ${RESERVED_PREFIX}, ${MIGRATIONS_TABLE_NAME})`,
  );
}

export const DBSTAT_REFUSED =
  "dbstat is not allowed in a replicated write: it reports this node's file layout, which differs between replicas";

function checkTokensForWrite(tokens: readonly Token[]): SqlErrorInfo | null {
  for (let i = 0; i < tokens.length; i++) {
    const t = tokens[i] as Token;
    // A string may be data ('_hq_meta' as a value): access-guard.ts sees string-spelled names.
    if (t.kind !== 'word' && t.kind !== 'quoted') continue;
    const ident = nameOf(t);
    if (ident === null) continue;
    const lower = asciiLower(ident);
    if (lower.startsWith(RESERVED_PREFIX)) return reserved(ident);
    // The table (eponymous, or `CREATE VIRTUAL TABLE … USING dbstat`) reports where each row
    // of the file lies: a replica's layout, not replicated state (a write copying it from
    // `_hq_meta`'s pages made the replicas' rows differ). access-guard.ts sees it via a view.
    if (lower === 'dbstat') return notAllowed(DBSTAT_REFUSED);
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
