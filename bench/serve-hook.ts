/**
 * Preloaded into the `hiqlite serve` processes of the benchmark cluster
 * (`node --import tsx --import bench/serve-hook.ts src/server/cli.ts serve …`): answers the
 * parent's IPC requests with this process's event-loop stall figures, without touching the
 * product's code. Does nothing unless HQL_BENCH_LOOP_MONITOR=1 and an IPC channel exists.
 */
import { LoopMonitor, type LoopReply, type LoopRequest } from './loop-monitor.js';

if (process.env.HQL_BENCH_LOOP_MONITOR === '1' && process.send !== undefined) {
  const monitor = new LoopMonitor();
  process.on('message', (m: unknown) => {
    const req = m as Partial<LoopRequest> | null;
    if (req === null || req.type !== 'bench-loop' || typeof req.seq !== 'number') return;
    const reply: LoopReply = { type: 'bench-loop', seq: req.seq, stats: monitor.read(req.reset === true) };
    process.send?.(reply);
  });
  // The channel must not keep the node alive once it shuts down.
  process.channel?.unref();
}
