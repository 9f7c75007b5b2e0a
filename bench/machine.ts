/**
 * What a benchmark figure means depends on where it ran: the machine line, and the cluster
 * configuration the numbers were measured with (production defaults).
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { cpus, freemem, loadavg, totalmem } from 'node:os';
import { join, resolve } from 'node:path';
import { INTEGER_SETTINGS } from '../src/node/config/config-keys.js';

export interface MachineInfo {
  readonly cores: number;
  readonly cpuModel: string;
  readonly node: string;
  readonly platform: string;
  readonly memoryGiB: number;
  readonly freeMemoryGiB: number;
  /** 1, 5 and 15 minute load averages when the run started. */
  readonly loadAvgStart: readonly [number, number, number];
  readonly hiqliteVersion: string;
  /** `git rev-parse --short HEAD` (plus "+dirty" when the tree has changes), or null. */
  readonly commit: string | null;
  readonly startedAt: string;
}

export interface ClusterConfigInfo {
  readonly nodes: number;
  readonly transport: string;
  readonly durability: string;
  readonly tickIntervalMs: number;
  readonly heartbeatIntervalMs: number;
  readonly electionTimeoutMs: number;
  readonly logsUntilSnapshot: number;
  /** Applied command bytes that also trigger a snapshot (null in versions without the key). */
  readonly logBytesUntilSnapshot: number | null;
  readonly sqliteStateMachine: string;
}

/** The repository (bench/compiled.mjs runs a build elsewhere and says where it came from). */
const REPO = process.env.HQL_BENCH_REPO ?? resolve(import.meta.dirname, '..');

export function machineInfo(): MachineInfo {
  const cs = cpus();
  const load = loadavg();
  return {
    cores: cs.length,
    cpuModel: cs[0]?.model.trim() ?? 'unknown',
    node: process.version,
    platform: `${process.platform} ${process.arch}`,
    memoryGiB: round(totalmem() / 2 ** 30, 1),
    freeMemoryGiB: round(freemem() / 2 ** 30, 1),
    loadAvgStart: [round(load[0] ?? 0, 2), round(load[1] ?? 0, 2), round(load[2] ?? 0, 2)],
    hiqliteVersion: packageVersion(),
    commit: gitCommit(),
    startedAt: new Date().toISOString(),
  };
}

/** The defaults the benchmark cluster runs with (it sets none of these keys). */
export function clusterConfigInfo(): ClusterConfigInfo {
  const find = (key: string) => INTEGER_SETTINGS.find((s) => s.key === key)?.default;
  const d = (key: string) => find(key) ?? Number.NaN;
  return {
    nodes: 3,
    transport: 'separate processes, TCP on 127.0.0.1, no TLS',
    durability: 'fsync on quorum before ack',
    tickIntervalMs: d('tickIntervalMs'),
    heartbeatIntervalMs: d('heartbeatIntervalMs'),
    electionTimeoutMs: d('electionTimeoutMs'),
    logsUntilSnapshot: d('logsUntilSnapshot'),
    logBytesUntilSnapshot: find('logBytesUntilSnapshot') ?? null,
    sqliteStateMachine: 'WAL, synchronous=NORMAL (the Raft log is the durable copy)',
  };
}

export function currentLoad(): number {
  return round(loadavg()[0] ?? 0, 2);
}

/** From package.json beside `bench/` (a build directory may have none). */
function packageVersion(): string {
  try {
    return (
      (JSON.parse(readFileSync(join(REPO, 'package.json'), 'utf8')) as { version?: string }).version ?? '?'
    );
  } catch {
    return '?';
  }
}

function gitCommit(): string | null {
  try {
    const head = execFileSync('git', ['rev-parse', '--short', 'HEAD'], {
      cwd: REPO,
      encoding: 'utf8',
    }).trim();
    const dirty = execFileSync('git', ['status', '--porcelain', '--untracked-files=no'], {
      cwd: REPO,
      encoding: 'utf8',
    }).trim();
    return dirty === '' ? head : `${head}+dirty`;
  } catch {
    return null;
  }
}

export function round(x: number, digits: number): number {
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}
