/** Cluster: every member with its own view of itself, asked again every second. */
import type { ClusterStatus, MemberStatus } from '../api-types.js';
import { api } from './api.js';
import { usePoll } from './poll.js';

const REFRESH_MS = 1000;

export function ClusterPage() {
  const { data, error } = usePoll(() => api<ClusterStatus>('GET', 'cluster'), REFRESH_MS);
  return (
    <section>
      <h2>Cluster</h2>
      {error !== null && (
        <p class="error">
          <code>{error.code}</code> {error.message}
        </p>
      )}
      {data === null ? (
        <p class="muted">Asking the members…</p>
      ) : (
        <>
          <p class="summary" id="cluster-summary">
            {data.leaderId === null ? (
              <span class="bad">no leader</span>
            ) : (
              <>
                leader <strong id="leader-id">node {data.leaderId}</strong>
              </>
            )}{' '}
            · term {data.term ?? '–'} · {data.members.filter((m) => m.up).length} of {data.members.length}{' '}
            members up · <span class="muted">updated {new Date(data.atWallMs).toLocaleTimeString()}</span>
          </p>
          <div class="scroll">
            <table class="grid compact" id="members">
              <thead>
                <tr>
                  <th>node</th>
                  <th>API address</th>
                  <th>state</th>
                  <th>role</th>
                  <th class="num">term</th>
                  <th>leader</th>
                  <th class="num">commit</th>
                  <th class="num">applied</th>
                  <th class="num">last log</th>
                  <th class="num">lag</th>
                  <th
                    class="num"
                    title="its clock minus the median of the nodes' clocks, which log time follows"
                  >
                    clock
                  </th>
                  <th>health</th>
                </tr>
              </thead>
              <tbody>
                {data.members.map((m) => (
                  <MemberRow key={m.id} m={m} />
                ))}
              </tbody>
            </table>
          </div>
        </>
      )}
    </section>
  );
}

/** An offset from the cluster's clock over this is shown as a problem (the node also logs it). */
const CLOCK_OFFSET_SHOWN_BAD_MS = 1000;

/** `+0 ms`, `-250 ms`, `+3600.0 s`. */
function formatOffset(ms: number): string {
  const sign = ms < 0 ? '-' : '+';
  const abs = Math.abs(ms);
  return abs < 1000 ? `${sign}${Math.round(abs)} ms` : `${sign}${(abs / 1000).toFixed(1)} s`;
}

function MemberRow({ m }: { m: MemberStatus }) {
  const dash = '–';
  return (
    <tr
      class={m.up ? '' : 'down'}
      data-node={m.id}
      data-state={m.up ? 'up' : 'down'}
      data-role={m.role ?? ''}
      data-listed={m.listed ? 'yes' : 'no'}
    >
      <td>
        {m.id}
        {m.self && <span class="tag">this node</span>}
      </td>
      <td>{m.listed ? <code>{m.addrApi}</code> : <span class="bad">not in the nodes list</span>}</td>
      <td>{m.up ? <span class="ok">up</span> : <span class="bad">down</span>}</td>
      <td>
        {m.role === 'leader' ? <span class="tag leader">leader</span> : (m.role ?? dash)}
        {m.voter === false && m.role !== 'learner' && <span class="tag">learner</span>}
      </td>
      <td class="num">{m.term ?? dash}</td>
      <td>{m.leaderId ?? dash}</td>
      <td class="num">{m.commitIndex ?? dash}</td>
      <td class="num">{m.appliedIndex ?? dash}</td>
      <td class="num">{m.lastLogIndex ?? dash}</td>
      <td class="num">{m.lag ?? dash}</td>
      <td class="num" data-clock-offset={m.clockOffsetMs ?? ''}>
        {m.clockOffsetMs === null ? (
          dash
        ) : (
          <span class={Math.abs(m.clockOffsetMs) > CLOCK_OFFSET_SHOWN_BAD_MS ? 'bad' : ''}>
            {formatOffset(m.clockOffsetMs)}
          </span>
        )}
      </td>
      <td class="wrap" title={m.error ?? ''}>
        {m.healthy ? (
          <span class="ok">healthy</span>
        ) : (
          <span class="bad">{m.up ? 'unhealthy' : 'unreachable'}</span>
        )}
        {m.error !== null && <div class="muted small">{m.error}</div>}
      </td>
    </tr>
  );
}
