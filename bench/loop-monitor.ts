/**
 * The longest event-loop stall of this process, from `monitorEventLoopDelay` (node:perf_hooks):
 * the delay of a 10 ms timer beyond its due time, so a stall shorter than about 10 ms may be
 * missed but a long one (the kind that delays heartbeats) never is.
 */
import { type IntervalHistogram, monitorEventLoopDelay } from 'node:perf_hooks';

export interface LoopStats {
  /** Longest stall seen since the last reset, in ms. */
  readonly maxMs: number;
  readonly p99Ms: number;
  readonly meanMs: number;
  /** Samples since the last reset. */
  readonly samples: number;
  /** `process.memoryUsage()` now, in MB: where the RSS goes (JS heap, buffers, native). */
  readonly heapUsedMb: number;
  readonly externalMb: number;
  readonly arrayBuffersMb: number;
}

const RESOLUTION_MS = 10;

export class LoopMonitor {
  private readonly h: IntervalHistogram = monitorEventLoopDelay({ resolution: RESOLUTION_MS });

  constructor() {
    this.h.enable();
  }

  /** The stats since the last reset; `reset` starts a new interval. */
  read(reset: boolean): LoopStats {
    const { h } = this;
    const m = process.memoryUsage();
    const memory = {
      heapUsedMb: mb(m.heapUsed),
      externalMb: mb(m.external),
      arrayBuffersMb: mb(m.arrayBuffers),
    };
    const stats: LoopStats =
      h.count === 0
        ? { maxMs: 0, p99Ms: 0, meanMs: 0, samples: 0, ...memory }
        : {
            maxMs: h.max / 1e6,
            p99Ms: h.percentile(99) / 1e6,
            meanMs: h.mean / 1e6,
            samples: h.count,
            ...memory,
          };
    if (reset) h.reset();
    return stats;
  }
}

function mb(bytes: number): number {
  return Math.round(bytes / 1024 / 102.4) / 10;
}

/** The IPC messages between the parent and a monitored process. */
export interface LoopRequest {
  readonly type: 'bench-loop';
  readonly seq: number;
  readonly reset: boolean;
}

export interface LoopReply {
  readonly type: 'bench-loop';
  readonly seq: number;
  readonly stats: LoopStats;
}
