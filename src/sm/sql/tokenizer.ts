/**
 * A small SQLite tokenizer: just enough to split a script into statements, find parameters,
 * and read the keywords and names the statement guard needs. It never evaluates anything; SQLite
 * stays the parser of record. String literals, quoted identifiers (`"x"`, `` `x` ``, `[x]`),
 * blob literals and comments are skipped as units, so a `;`, `?` or keyword inside them is never
 * mistaken for syntax. Unterminated literals and comments extend to the end of the input (SQLite
 * then reports the syntax error).
 */

export type TokenKind = 'word' | 'quoted' | 'string' | 'blob' | 'number' | 'param' | 'punct';

export interface Token {
  readonly kind: TokenKind;
  /** The exact source text of the token. */
  readonly text: string;
  /** Offsets into the tokenized string: `[start, end)`. */
  readonly start: number;
  readonly end: number;
}

export interface SqlStatement {
  /** The statement's source text, from its first token to its last (comments inside kept). */
  readonly text: string;
  /** Tokens with offsets relative to `text`. */
  readonly tokens: readonly Token[];
}

function isSpace(c: number): boolean {
  return c === 0x20 || c === 0x09 || c === 0x0a || c === 0x0d || c === 0x0c;
}

/**
 * What SQLite skips where a token may start: whitespace, and U+FEFF (a UTF-8 byte-order mark,
 * which sqlite3GetToken reads as a space wherever a token starts, though inside a name it is a
 * name's character). Read as a name's start here, `\uFEFFBEGIN` was the word "\uFEFFBEGIN" to
 * the statement guard, and BEGIN to SQLite: every guard rule was bypassed by one leading BOM.
 */
function isTokenSpace(c: number): boolean {
  return isSpace(c) || c === 0xfeff;
}

function isDigit(c: number): boolean {
  return c >= 0x30 && c <= 0x39;
}

function isIdentStart(c: number): boolean {
  return (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a) || c === 0x5f || c >= 0x80;
}

function isIdentPart(c: number): boolean {
  return isIdentStart(c) || isDigit(c) || c === 0x24;
}

/** End offset of a literal opened by `quote` at `start`, honouring doubled-quote escapes. */
function scanQuoted(sql: string, start: number, quote: string): number {
  let i = start + 1;
  while (i < sql.length) {
    const j = sql.indexOf(quote, i);
    if (j === -1) return sql.length;
    if (sql[j + 1] === quote && quote !== ']') {
      i = j + 2;
      continue;
    }
    return j + 1;
  }
  return sql.length;
}

function scanWhile(sql: string, i: number, pred: (c: number) => boolean): number {
  while (i < sql.length && pred(sql.charCodeAt(i))) i++;
  return i;
}

function scanNumber(sql: string, start: number): number {
  // Hex literals (0x1E) have no exponent; decimal ones may (1e-5, 2.5E+3).
  const hex = /^0x/i.test(sql.slice(start, start + 2));
  let i = start;
  while (i < sql.length) {
    const c = sql.charCodeAt(i);
    if (!hex && (c === 0x65 || c === 0x45) && (sql[i + 1] === '+' || sql[i + 1] === '-')) i += 2;
    else if (isIdentPart(c) || c === 0x2e) i++;
    else break;
  }
  return i;
}

/** Returns the end of the token starting at `i` and its kind, or null for whitespace/comments. */
function scanToken(sql: string, i: number): { end: number; kind: TokenKind | null } {
  const c = sql.charCodeAt(i);
  const next = sql.charCodeAt(i + 1);
  if (isTokenSpace(c)) return { end: scanWhile(sql, i, isTokenSpace), kind: null };
  if (c === 0x2d && next === 0x2d) {
    const nl = sql.indexOf('\n', i);
    return { end: nl === -1 ? sql.length : nl + 1, kind: null };
  }
  if (c === 0x2f && next === 0x2a) {
    const close = sql.indexOf('*/', i + 2);
    return { end: close === -1 ? sql.length : close + 2, kind: null };
  }
  if (c === 0x27) return { end: scanQuoted(sql, i, "'"), kind: 'string' };
  if (c === 0x22) return { end: scanQuoted(sql, i, '"'), kind: 'quoted' };
  if (c === 0x60) return { end: scanQuoted(sql, i, '`'), kind: 'quoted' };
  if (c === 0x5b) return { end: scanQuoted(sql, i, ']'), kind: 'quoted' };
  if ((c === 0x78 || c === 0x58) && next === 0x27) return { end: scanQuoted(sql, i + 1, "'"), kind: 'blob' };
  if (isDigit(c) || (c === 0x2e && isDigit(next))) return { end: scanNumber(sql, i), kind: 'number' };
  if (c === 0x3f) return { end: scanWhile(sql, i + 1, isDigit), kind: 'param' };
  if ((c === 0x3a || c === 0x40 || c === 0x24) && isIdentPart(next)) {
    return { end: scanWhile(sql, i + 1, isIdentPart), kind: 'param' };
  }
  if (isIdentStart(c)) return { end: scanWhile(sql, i, isIdentPart), kind: 'word' };
  return { end: i + 1, kind: 'punct' };
}

export function tokenize(sql: string): Token[] {
  const tokens: Token[] = [];
  let i = 0;
  // Bounded: every iteration consumes at least one character.
  while (i < sql.length) {
    const { end, kind } = scanToken(sql, i);
    if (!(end > i)) throw new Error(`tokenizer made no progress at offset ${i}`);
    if (kind !== null) tokens.push({ kind, text: sql.slice(i, end), start: i, end });
    i = end;
  }
  return tokens;
}

export function isWord(t: Token | undefined, ...words: string[]): boolean {
  if (t === undefined || t.kind !== 'word') return false;
  const upper = t.text.toUpperCase();
  return words.includes(upper);
}

/**
 * The name a token gives where SQLite's grammar takes a name (`nm` in parse.y): a word, a quoted
 * identifier (`"x"`, `[x]`, `` `x` ``) or a string literal (`'x'`), quotes removed and escapes
 * undone; null for any other token.
 */
export function nameOf(t: Token): string | null {
  if (t.kind === 'word') return t.text;
  if (t.kind === 'string') return stringValue(t);
  if (t.kind !== 'quoted') return null;
  const open = t.text[0];
  const inner = t.text.slice(1, t.text.length > 1 ? -1 : undefined);
  if (open === '[') return inner;
  return open === '"' ? inner.replaceAll('""', '"') : inner.replaceAll('``', '`');
}

/** The value of a string-literal token. */
export function stringValue(t: Token): string {
  return t.text.slice(1, t.text.length > 1 && t.text.endsWith("'") ? -1 : undefined).replaceAll("''", "'");
}

/**
 * Splits a script into statements at top-level `;`. A `CREATE TRIGGER … BEGIN … END` body
 * contains `;`-terminated statements of its own, so inside a trigger body a `;` only splits once
 * the matching END (CASE … END pairs counted) has been seen. Empty statements are dropped.
 */
export function splitStatements(sql: string): SqlStatement[] {
  const tokens = tokenize(sql);
  const out: SqlStatement[] = [];
  let current: Token[] = [];
  let triggerState: 'none' | 'header' | 'body' = 'none';
  let caseDepth = 0;
  const flush = () => {
    const first = current[0];
    const last = current[current.length - 1];
    if (first !== undefined && last !== undefined) {
      const text = sql.slice(first.start, last.end);
      out.push({
        text,
        tokens: current.map((t) => ({ ...t, start: t.start - first.start, end: t.end - first.start })),
      });
    }
    current = [];
    triggerState = 'none';
    caseDepth = 0;
  };
  for (const t of tokens) {
    if (t.kind === 'punct' && t.text === ';' && triggerState !== 'body') {
      flush();
      continue;
    }
    current.push(t);
    if (
      triggerState === 'none' &&
      current.length <= 3 &&
      isWord(t, 'TRIGGER') &&
      isWord(current[0], 'CREATE')
    ) {
      triggerState = 'header';
    } else if (triggerState === 'header' && isWord(t, 'BEGIN')) {
      triggerState = 'body';
    } else if (triggerState === 'body') {
      if (isWord(t, 'CASE')) caseDepth++;
      else if (isWord(t, 'END')) {
        if (caseDepth > 0) caseDepth--;
        else triggerState = 'header';
      }
    }
  }
  flush();
  return out;
}
