/**
 * A line chart in plain SVG: one or more series of equally spaced samples (null: no value, the
 * line breaks), a y axis from 0 to a rounded maximum, and the time span below. No chart library.
 */

export interface Series {
  readonly name: string;
  readonly values: readonly (number | null)[];
  /** CSS class of the line (its colour). */
  readonly cls: string;
}

const W = 560;
const H = 160;
const PAD_L = 44;
const PAD_R = 8;
const PAD_T = 8;
const PAD_B = 20;

export interface LineChartProps {
  readonly title: string;
  readonly unit: string;
  readonly series: readonly Series[];
  /** Samples the x axis spans (the newest at the right). */
  readonly capacity: number;
  readonly spanLabel: string;
  readonly id?: string;
}

export function LineChart(p: LineChartProps) {
  const all = p.series.flatMap((s) => s.values.filter((v): v is number => v !== null));
  const max = niceMax(Math.max(0, ...all));
  const last = p.series.map((s) => lastValue(s.values));
  const x = (i: number, n: number) =>
    PAD_L + ((W - PAD_L - PAD_R) * (p.capacity - n + i)) / Math.max(1, p.capacity - 1);
  const y = (v: number) => PAD_T + (H - PAD_T - PAD_B) * (1 - v / max);
  return (
    <figure class="chart" id={p.id}>
      <figcaption>
        <strong>{p.title}</strong>
        {p.series.map((s, i) => (
          <span key={s.name} class={`legend ${s.cls}`}>
            {s.name} {last[i] === null ? '–' : `${format(last[i] as number)} ${p.unit}`}
          </span>
        ))}
      </figcaption>
      <svg viewBox={`0 0 ${W} ${H}`} role="img" aria-label={p.title}>
        {[0, 0.5, 1].map((f) => (
          <g key={f}>
            <line class="gridline" x1={PAD_L} x2={W - PAD_R} y1={y(max * f)} y2={y(max * f)} />
            <text class="axis" x={PAD_L - 4} y={y(max * f) + 4} text-anchor="end">
              {format(max * f)}
            </text>
          </g>
        ))}
        <text class="axis" x={PAD_L} y={H - 4}>
          {p.spanLabel}
        </text>
        <text class="axis" x={W - PAD_R} y={H - 4} text-anchor="end">
          now
        </text>
        {p.series.map((s) => (
          <path key={s.name} class={`line ${s.cls}`} d={pathOf(s.values, (i) => x(i, s.values.length), y)} />
        ))}
      </svg>
    </figure>
  );
}

function pathOf(
  values: readonly (number | null)[],
  x: (i: number) => number,
  y: (v: number) => number,
): string {
  let d = '';
  let pen = false;
  values.forEach((v, i) => {
    if (v === null) {
      pen = false;
      return;
    }
    d += `${pen ? 'L' : 'M'}${x(i).toFixed(1)},${y(v).toFixed(1)}`;
    pen = true;
  });
  return d;
}

/** 1, 2 or 5 times a power of ten, at least `v` (and at least 1). */
function niceMax(v: number): number {
  if (v <= 1) return 1;
  const p = 10 ** Math.floor(Math.log10(v));
  for (const m of [1, 2, 5, 10]) if (m * p >= v) return m * p;
  return 10 * p;
}

function lastValue(values: readonly (number | null)[]): number | null {
  for (let i = values.length - 1; i >= 0; i--) {
    const v = values[i];
    if (v !== null && v !== undefined) return v;
  }
  return null;
}

function format(v: number): string {
  if (v >= 1000) return `${(v / 1000).toFixed(v >= 10_000 ? 0 : 1)}k`;
  if (v >= 10 || Number.isInteger(v)) return String(Math.round(v));
  return v.toFixed(v >= 1 ? 1 : 2);
}
