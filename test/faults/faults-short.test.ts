/**
 * The short fault-injection suite (part of `npm test`): one 3-node cluster of real processes
 * behind link proxies, and one short phase per nemesis family on it, each with a client workload
 * and every check of the long runner (test/faults/cli.ts): a linearizable history, no acknowledged
 * write lost, identical replicas, live again soon after the faults stop, restarted and wiped nodes
 * rejoin, no process dies on its own. The seeds are fixed (HQL_FAULT_SEED overrides the first);
 * a failure prints the phase's report and leaves its files under .fault-runs/.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { NemesisName } from './nemesis.js';
import { formatRunTable } from './report.js';
import { FaultSession, type PhaseReport } from './runner.js';

const FIRST_SEED = Number(process.env.HQL_FAULT_SEED ?? 20_251_126);

/** Seconds per family: about 75 s of faults, under two minutes with start-up and checks. */
const PHASES: ReadonlyArray<{ nemesis: NemesisName; seconds: number }> = [
  { nemesis: 'kill', seconds: 12 },
  { nemesis: 'kill-leader', seconds: 10 },
  { nemesis: 'pause', seconds: 12 },
  { nemesis: 'partition', seconds: 15 },
  { nemesis: 'slow', seconds: 10 },
  { nemesis: 'wipe', seconds: 12 },
  { nemesis: 'operator', seconds: 15 },
];

function explain(r: PhaseReport): string {
  const failed = r.checks.filter((c) => !c.ok).map((c) => `${c.name}: ${c.detail}`);
  return [
    `nemesis ${r.nemesis} seed ${r.seed} failed:`,
    ...failed,
    `faults: ${r.faults.join('; ') || '(none)'}`,
    `replay its decisions: node --import tsx test/faults/cli.ts --runs 1 --nodes 3 --nemesis ${r.nemesis} --seed ${r.seed} --seconds ${r.seconds}`,
  ].join('\n');
}

describe('fault injection (short): a 3-node cluster keeps its guarantees under each nemesis', () => {
  let session: FaultSession | null = null;
  const reports: PhaseReport[] = [];

  before(async () => {
    session = await FaultSession.open({ nodes: 3 }, `${FIRST_SEED}-short`);
  });

  after(async () => {
    if (session === null) return;
    const failed = reports.length < PHASES.length || reports.some((r) => !r.ok);
    const folder = await session.finish({ save: failed, label: `${FIRST_SEED}-short` });
    if (reports.length > 0) console.log(formatRunTable(reports));
    if (folder !== null) console.log(`fault-suite files: ${folder}`);
  });

  PHASES.forEach((phase, i) => {
    test(`${phase.nemesis}: linearizable, no acknowledged write lost, identical replicas, live again`, async () => {
      assert(session !== null, 'the cluster started');
      const r = await session.phase({ nemesis: phase.nemesis, seed: FIRST_SEED + i, seconds: phase.seconds });
      reports.push(r);
      assert.ok(r.counts.ok > 0, `no operation succeeded under ${phase.nemesis}`);
      assert.ok(r.ok, explain(r));
    });
  });
});
