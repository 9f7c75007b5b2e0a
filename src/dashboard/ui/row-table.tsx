/** Rows as a table, with previous / next page buttons when the caller can fetch other pages. */
import type { Cell } from '../api-types.js';

export interface RowTableProps {
  readonly columns: readonly string[];
  readonly rows: readonly (readonly Cell[])[];
  readonly offset?: number;
  readonly hasMore?: boolean;
  readonly pageRows?: number;
  readonly onPage?: (offset: number) => void;
  readonly id?: string;
}

export function RowTable(p: RowTableProps) {
  const offset = p.offset ?? 0;
  const pageRows = p.pageRows ?? p.rows.length;
  const paged = p.onPage !== undefined && (offset > 0 || p.hasMore === true);
  return (
    <div class="rows" id={p.id}>
      {p.rows.length === 0 ? (
        <p class="muted">No rows{offset > 0 ? ' on this page' : ''}.</p>
      ) : (
        <div class="scroll">
          <table class="grid">
            <thead>
              <tr>
                <th class="rownum">#</th>
                {p.columns.map((c) => (
                  <th key={c}>{c}</th>
                ))}
              </tr>
            </thead>
            <tbody>
              {p.rows.map((r, i) => (
                <tr key={offset + i}>
                  <td class="rownum">{offset + i + 1}</td>
                  {r.map((c, j) => (
                    <CellView key={j} c={c} />
                  ))}
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
      {paged && (
        <Pager
          unit="rows"
          offset={offset}
          shown={p.rows.length}
          pageSize={pageRows}
          hasMore={p.hasMore === true}
          onPage={(o) => p.onPage?.(o)}
        />
      )}
    </div>
  );
}

export interface PagerProps {
  /** What is paged, as the label says it: `rows 1–50`. */
  readonly unit: string;
  readonly offset: number;
  /** How many this page shows. */
  readonly shown: number;
  readonly pageSize: number;
  readonly hasMore: boolean;
  readonly onPage: (offset: number) => void;
}

/** Previous / next page buttons around what this page shows. */
export function Pager(p: PagerProps) {
  return (
    <div class="pager">
      <button
        type="button"
        class="secondary"
        disabled={p.offset === 0}
        onClick={() => p.onPage(Math.max(0, p.offset - p.pageSize))}
      >
        ← Previous
      </button>
      <span class="muted">
        {p.unit} {p.shown === 0 ? 0 : p.offset + 1}–{p.offset + p.shown}
      </span>
      <button
        type="button"
        class="secondary next"
        disabled={!p.hasMore}
        onClick={() => p.onPage(p.offset + p.pageSize)}
      >
        Next →
      </button>
    </div>
  );
}

function CellView({ c }: { c: Cell }) {
  if (c === null) return <td class="null">NULL</td>;
  if (typeof c === 'number') return <td class="num">{c}</td>;
  if (typeof c === 'string') return <td>{c}</td>;
  switch (c.kind) {
    case 'bigint':
      return <td class="num">{c.text}</td>;
    case 'blob':
      return (
        <td class="blob">
          x'{c.hex}
          {c.bytes * 2 > c.hex.length ? '…' : ''}' <span class="muted">({c.bytes} bytes)</span>
        </td>
      );
    case 'long':
      return (
        <td>
          {c.text}… <span class="muted">({c.chars} characters)</span>
        </td>
      );
  }
}
