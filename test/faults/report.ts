/**
 * Text reports of fault runs: one line per run as it finishes, a table of every run, and a table
 * per nemesis (runs passed, ops by outcome, worst time to live again).
 */
import type { PhaseReport, RunReport } from './runner.js';

const CHECK_ORDER = ['linearizable', 'appends', 'replicas', 'liveness', 'rejoin', 'crashes', 'errors'];
/** The cache workloads' checks (present when they ran). */
const CACHE_CHECK_ORDER = [
  'cache-linearizable',
  'getRemove',
  'locks',
  'notify',
  'ttl',
  'lock-handover',
  'cache-errors',
];

export function formatRunLine(n: number, r: RunReport): string {
  const c = r.counts;
  return (
    `#${n} ${r.nemesis} seed=${r.seed} ${r.ok ? 'PASS' : 'FAIL'} ` +
    `ops ok/failed/unknown ${c.ok}/${c.failed}/${c.unknown}, ` +
    (r.cacheCounts === null
      ? ''
      : `cache ops ${r.cacheCounts.ok}/${r.cacheCounts.failed}/${r.cacheCounts.unknown}, `) +
    `${r.faults.length} episodes, ` +
    `live ${r.liveMs === null ? '-' : `${r.liveMs} ms`}, ${(r.durationMs / 1000).toFixed(1)} s`
  );
}

/** One row per run: nemesis, seed, ops, every check. */
export function formatRunTable(reports: readonly PhaseReport[]): string {
  const withCache = reports.some((r) => r.cacheCounts !== null);
  const checks = withCache ? [...CHECK_ORDER, ...CACHE_CHECK_ORDER] : CHECK_ORDER;
  const header = ['nemesis', 'seed', 'nodes', 'ok', 'failed', 'unknown', 'episodes', ...checks, 'result'];
  const rows = reports.map((r) => [
    r.nemesis,
    String(r.seed),
    String(r.nodes),
    String(r.counts.ok),
    String(r.counts.failed),
    String(r.counts.unknown),
    String(r.faults.length),
    ...checks.map((name) => {
      const c = r.checks.find((x) => x.name === name);
      if (c === undefined) return '-';
      if (!c.ok) return 'FAIL';
      return name === 'liveness' ? c.detail : 'ok';
    }),
    r.ok ? 'PASS' : 'FAIL',
  ]);
  return table(header, rows);
}

/** One row per nemesis: runs passed, ops by outcome, the slowest return to liveness. */
export function formatSummaryTable(reports: readonly PhaseReport[]): string {
  const by = new Map<string, PhaseReport[]>();
  for (const r of reports) by.set(r.nemesis, [...(by.get(r.nemesis) ?? []), r]);
  const header = [
    'nemesis',
    'runs',
    'passed',
    'failed',
    'ops ok',
    'ops failed',
    'ops unknown',
    'cache ok',
    'cache failed',
    'cache unknown',
    'live max',
  ];
  const rows = [...by].map(([nemesis, rs]) => {
    const live = rs.map((r) => r.liveMs).filter((x): x is number => x !== null);
    return [
      nemesis,
      String(rs.length),
      String(rs.filter((r) => r.ok).length),
      String(rs.filter((r) => !r.ok).length),
      String(sum(rs.map((r) => r.counts.ok))),
      String(sum(rs.map((r) => r.counts.failed))),
      String(sum(rs.map((r) => r.counts.unknown))),
      String(sum(rs.map((r) => r.cacheCounts?.ok ?? 0))),
      String(sum(rs.map((r) => r.cacheCounts?.failed ?? 0))),
      String(sum(rs.map((r) => r.cacheCounts?.unknown ?? 0))),
      live.length === 0 ? '-' : `${Math.max(...live)} ms`,
    ];
  });
  return table(header, rows);
}

function sum(xs: readonly number[]): number {
  return xs.reduce((a, b) => a + b, 0);
}

function table(header: readonly string[], rows: readonly (readonly string[])[]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: readonly string[]) =>
    `| ${cells.map((c, i) => c.padEnd(widths[i] ?? 0)).join(' | ')} |`;
  const rule = `| ${widths.map((w) => '-'.repeat(w)).join(' | ')} |`;
  return [line(header), rule, ...rows.map(line)].join('\n');
}
