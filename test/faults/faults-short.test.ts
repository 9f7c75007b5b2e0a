/**
 * The short fault-injection suite (part of `npm test`): one 3-node cluster of real processes
 * behind link proxies, and one short phase per nemesis family on it, each with a client workload
 * and every check of the long runner (test/faults/cli.ts): a linearizable history, no acknowledged
 * write lost, identical replicas, live again soon after the faults stop, restarted and wiped nodes
 * rejoin, no process dies on its own (but for a node whose disk the disk-full phase filled: it
 * must stop, exit code 1, naming ENOSPC; every node runs under the ENOSPC shim,
 * test/support/enospc.ts, built with `cc`). Two more phases run the cache group's workloads and their
 * checks (test/faults/cache-checks.ts) instead. The seeds are fixed (HQL_FAULT_SEED overrides the first);
 * a failure prints the phase's report and leaves its files under .fault-runs/.
 *
 * Then, on a cluster of its own (after the first: never two at once on the small machine), the
 * clock nemesis: each node under libfaketime with a clock file of its own (cluster.ts), the cache
 * workloads running while a minority's system clocks are stepped ahead or behind by seconds to an
 * hour — alone, with those nodes cut off, or restarted at once with the wrong clock; every cache
 * check holds, and the `ttl` check in real time (no TTL ends early or late). Needs Debian's
 * `faketime` package (installed by .ci/run).
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { builtOrCompiledProduct, type CompiledProduct } from './compiled-product.js';
import type { NemesisName } from './nemesis.js';
import { formatRunTable } from './report.js';
import { FaultSession, type PhaseReport, type WorkloadName } from './runner.js';

const FIRST_SEED = Number(process.env.HQL_FAULT_SEED ?? 20_251_126);
const CLOCK_SEED = FIRST_SEED + 100;

/**
 * Seconds per family: about 75 s of faults on the SQL workload, under two minutes with start-up
 * and checks; then two phases of the cache group's workloads (locks, getRemove, put/get,
 * listeners on every node, the killed-holder probe), under a minute more.
 */
const PHASES: ReadonlyArray<{ nemesis: NemesisName; seconds: number; workloads: readonly WorkloadName[] }> = [
  { nemesis: 'kill', seconds: 12, workloads: ['sql'] },
  { nemesis: 'kill-leader', seconds: 10, workloads: ['sql'] },
  { nemesis: 'pause', seconds: 12, workloads: ['sql'] },
  { nemesis: 'partition', seconds: 15, workloads: ['sql'] },
  { nemesis: 'slow', seconds: 10, workloads: ['sql'] },
  { nemesis: 'wipe', seconds: 12, workloads: ['sql'] },
  { nemesis: 'operator', seconds: 15, workloads: ['sql'] },
  { nemesis: 'disk-full', seconds: 10, workloads: ['sql'] },
  { nemesis: 'pause', seconds: 7, workloads: ['cache'] },
  { nemesis: 'partition', seconds: 7, workloads: ['cache'] },
];

function explain(r: PhaseReport): string {
  const failed = r.checks.filter((c) => !c.ok).map((c) => `${c.name}: ${c.detail}`);
  return [
    `nemesis ${r.nemesis} seed ${r.seed} failed:`,
    ...failed,
    `faults: ${r.faults.join('; ') || '(none)'}`,
    `replay its decisions: node --import tsx test/faults/cli.ts --runs 1 --nodes 3 --nemesis ${r.nemesis} --seed ${r.seed} --seconds ${r.seconds} --workload ${r.cacheCounts === null ? 'sql' : 'cache'}`,
  ].join('\n');
}

describe('fault injection (short): a 3-node cluster keeps its guarantees under each nemesis', () => {
  let session: FaultSession | null = null;
  const reports: PhaseReport[] = [];

  // The nodes run compiled, as users run them (compiled-product.ts): through tsx every restart
  // transpiled the sources again, seconds on a loaded machine, which the liveness checks measured.
  let product: CompiledProduct | null = null;

  before(async () => {
    product = builtOrCompiledProduct();
    process.env.HQL_FAULTS_NODE_CLI = product.cli;
    // Every node under the ENOSPC shim, for the disk-full phase (it costs the others nothing).
    session = await FaultSession.open({ nodes: 3, disks: true }, `${FIRST_SEED}-short`);
  });

  after(async () => {
    // Removed when the file's process ends, after the session's processes are gone.
    process.once('exit', () => product?.remove());
    if (session === null) return;
    const failed = reports.length < PHASES.length || reports.some((r) => !r.ok);
    const folder = await session.finish({ save: failed, label: `${FIRST_SEED}-short` });
    if (reports.length > 0) console.log(formatRunTable(reports));
    if (folder !== null) console.log(`fault-suite files: ${folder}`);
  });

  PHASES.forEach((phase, i) => {
    const what = phase.workloads.includes('sql')
      ? 'linearizable, no acknowledged write lost, identical replicas, live again'
      : 'cache: linearizable put/get, one getRemove winner, locks without overlap, listeners miss nothing in silence';
    test(`${phase.nemesis}: ${what}`, async () => {
      assert(session !== null, 'the cluster started');
      const r = await session.phase({
        nemesis: phase.nemesis,
        seed: FIRST_SEED + i,
        seconds: phase.seconds,
        workloads: phase.workloads,
        // The probe of the cache checks kills a node: the last phase need not wait for its return.
        restartAfterProbe: i < PHASES.length - 1,
      });
      reports.push(r);
      const ok = phase.workloads.includes('sql') ? r.counts.ok : (r.cacheCounts?.ok ?? 0);
      assert.ok(ok > 0, `no operation succeeded under ${phase.nemesis}`);
      assert.ok(r.ok, explain(r));
    });
  });
});

describe('fault injection (short): stepped clocks of a minority end no TTL early or late', () => {
  let session: FaultSession | null = null;
  let report: PhaseReport | null = null;
  let product: CompiledProduct | null = null;

  before(async () => {
    product = builtOrCompiledProduct();
    process.env.HQL_FAULTS_NODE_CLI = product.cli;
    session = await FaultSession.open({ nodes: 3, clocks: true }, `${CLOCK_SEED}-clock-short`);
  });

  after(async () => {
    process.once('exit', () => product?.remove());
    if (session === null) return;
    const folder = await session.finish({ save: report?.ok !== true, label: `${CLOCK_SEED}-clock-short` });
    if (report !== null) console.log(formatRunTable([report]));
    if (folder !== null) console.log(`fault-suite files: ${folder}`);
  });

  test('clock: TTLs in real time, linearizable put/get, one getRemove winner, locks without overlap', async () => {
    assert(session !== null, 'the cluster started');
    const r = await session.phase({
      nemesis: 'clock',
      seed: CLOCK_SEED,
      seconds: 15,
      workloads: ['cache'],
      restartAfterProbe: false,
    });
    report = r;
    const ttl = r.checks.find((c) => c.name === 'ttl');
    assert.ok(ttl !== undefined && /[1-9]\d* TTLs/.test(ttl.detail), `TTLs were checked: ${ttl?.detail}`);
    assert.ok(r.faults.length > 0, 'clocks were stepped');
    const failed = r.checks.filter((c) => !c.ok).map((c) => `${c.name}: ${c.detail}`);
    assert.ok(
      r.ok,
      [
        `clock seed ${r.seed} failed:`,
        ...failed,
        `faults: ${r.faults.join('; ')}`,
        `replay its decisions: node --import tsx test/faults/cli.ts --runs 1 --nodes 3 --nemesis clock --seed ${r.seed} --seconds 15 --workload cache`,
      ].join('\n'),
    );
  });
});
