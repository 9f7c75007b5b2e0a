/**
 * Rows as the page shows them: a header of column names and arrays of cells, each value cut to a
 * preview (long text, blobs), so one page of answer stays small whatever the data.
 */
import type { Cell } from './api-types.js';
import type { Row } from './backend.js';

/** Characters of a text value shown; longer ones are cut (the page says how long they were). */
export const CELL_CHARS_MAX = 2000;
/** Bytes of a blob shown, in hex. */
export const CELL_BLOB_BYTES_SHOWN = 32;

export function toCell(v: unknown): Cell {
  if (v === null || v === undefined) return null;
  if (typeof v === 'number') return Number.isFinite(v) ? v : String(v);
  if (typeof v === 'bigint') return { kind: 'bigint', text: v.toString() };
  if (typeof v === 'string')
    return v.length > CELL_CHARS_MAX
      ? { kind: 'long', chars: v.length, text: v.slice(0, CELL_CHARS_MAX) }
      : v;
  if (v instanceof Uint8Array)
    return {
      kind: 'blob',
      bytes: v.byteLength,
      hex: Buffer.from(v.subarray(0, CELL_BLOB_BYTES_SHOWN)).toString('hex'),
    };
  if (typeof v === 'boolean') return v ? 1 : 0;
  return String(v);
}

/** Column names (from the first row: a row is an object) and the rows as cells. */
export function toTable(rows: readonly Row[]): { columns: string[]; rows: Cell[][] } {
  const first = rows[0];
  const columns = first === undefined ? [] : Object.keys(first);
  return { columns, rows: rows.map((r) => columns.map((c) => toCell(r[c]))) };
}

/** `"name"` as an SQL identifier, whatever it holds. */
export function quoteIdent(name: string): string {
  return `"${name.replaceAll('"', '""')}"`;
}
