/** Metrics: this node's last ten minutes, one sample per second, refreshed every two seconds. */
import type { MetricsSeries } from '../api-types.js';
import { api } from './api.js';
import { LineChart, type LineChartProps } from './line-chart.js';
import { usePoll } from './poll.js';

const REFRESH_MS = 2000;
/** The node keeps 600 one-second samples (src/dashboard/metrics-history.ts). */
const CAPACITY = 600;

export function MetricsPage() {
  const { data, error } = usePoll(() => api<MetricsSeries>('GET', 'metrics'), REFRESH_MS);
  // The charts span the samples there are (at least a minute), up to the ten minutes kept.
  const samples = Math.min(CAPACITY, Math.max(60, data?.writesPerSec.length ?? 0));
  const seconds = (samples * (data?.intervalMs ?? 1000)) / 1000;
  const span = seconds >= 120 ? `−${Math.round(seconds / 60)} min` : `−${Math.round(seconds)} s`;
  return (
    <section>
      <h2>Metrics</h2>
      <p class="muted">
        This node, one sample per second{data === null ? '' : `, ${data.writesPerSec.length} so far`}.
      </p>
      {error !== null && (
        <p class="error">
          <code>{error.code}</code> {error.message}
        </p>
      )}
      {data !== null && (
        <div class="charts">
          {chartsOf(data).map((c) => (
            <LineChart key={c.id} {...c} capacity={samples} spanLabel={span} />
          ))}
        </div>
      )}
    </section>
  );
}

/** The charts of the page, each with its series (the span is the page's). */
function chartsOf(data: MetricsSeries): Omit<LineChartProps, 'capacity' | 'spanLabel'>[] {
  return [
    {
      id: 'chart-writes',
      title: 'Writes per second',
      unit: '/s',
      series: [{ name: 'writes', values: data.writesPerSec, cls: 's1' }],
    },
    {
      id: 'chart-reads',
      title: 'Reads per second',
      unit: '/s',
      series: [{ name: 'reads', values: data.readsPerSec, cls: 's2' }],
    },
    {
      id: 'chart-lag',
      title: 'Apply lag',
      unit: 'entries',
      series: [{ name: 'committed, not applied', values: data.applyLag, cls: 's3' }],
    },
    {
      id: 'chart-latency',
      title: 'Write latency',
      unit: 'ms',
      series: [
        { name: 'p50', values: data.latencyP50Ms, cls: 's1' },
        { name: 'p99', values: data.latencyP99Ms, cls: 's4' },
      ],
    },
  ];
}
