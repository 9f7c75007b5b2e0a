/**
 * The deterministic simulator over a fixed set of seeds: whole clusters under drops, duplicates,
 * reordering, partitions, crashes with lost and torn writes, killed processes, power loss of every
 * machine, operator wipes and rejoins, crashes during membership changes and snapshot installs,
 * membership churn, snapshots and leadership transfers must keep every safety property, stay
 * linearizable and recover liveness.
 * A failure names its seed; `npm run sim -- --seed S --verbose` replays it exactly.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { type RunStats, runSeed, type SeedResult } from './simulation.js';

/** The CI seed set; the scenario length is the default one (profile.ts CHAOS_MS_DEFAULT). */
const CI_SEEDS = Array.from({ length: 300 }, (_, i) => i + 1);

function describeFailure(r: SeedResult): string {
  const f = r.failure;
  if (f === null) return '';
  const firstLines = f.message.split('\n').slice(0, 4).join('\n    ');
  return `seed ${r.seed}: ${f.checker}\n    ${firstLines}\n    replay: npm run sim -- --seed ${r.seed} --verbose`;
}

describe('deterministic simulator', () => {
  test('300 seeds keep election safety, log matching, leader completeness, state-machine safety, linearizability and liveness', async (t) => {
    const totals = new Map<keyof RunStats, number>();
    const failures: SeedResult[] = [];
    for (const seed of CI_SEEDS) {
      const r = await runSeed(seed);
      if (!r.ok) failures.push(r);
      for (const [k, v] of Object.entries(r.stats) as Array<[keyof RunStats, number]>) {
        totals.set(k, (totals.get(k) ?? 0) + v);
      }
    }
    const total = (k: keyof RunStats) => totals.get(k) ?? 0;
    t.diagnostic(
      `leaders ${total('leadersElected')}, crashes ${total('crashes')}, partitions ${total('partitions')}, snapshots ${total('snapshotsInstalled')} installed, membership changes ${total('membershipApplied')}, transfers ${total('transfers')}, ops checked ${total('opsChecked')}`,
    );
    assert.equal(
      failures.length,
      0,
      `${failures.length} of ${CI_SEEDS.length} seeds failed:\n  ${failures.map(describeFailure).join('\n  ')}`,
    );
    // The seed set must keep exercising every fault and feature, or passing means little.
    for (const k of [
      'leadersElected',
      'crashes',
      'tornWrites',
      'lostWrites',
      'partitions',
      'snapshotsInstalled',
      'membershipApplied',
      'transfers',
      'opsChecked',
      'opsUnknown',
      'kills',
      'powerLossesAll',
      'wipes',
      'discards',
      'joins',
      'rejoined',
      'bootstrapProofs',
      'bootstrapProofsJoined',
      'apiLost',
      'crashesDuringMembership',
      'crashesDuringSnapshotInstall',
    ] as const) {
      assert.ok(total(k) > 0, `no ${k} across the CI seeds`);
    }
  });

  test('a seed replays exactly: two runs have the same event-trace hash', async () => {
    for (const seed of [7, 42]) {
      const a = await runSeed(seed);
      const b = await runSeed(seed);
      assert.equal(a.traceDigest, b.traceDigest, `seed ${seed} did not replay`);
      assert.deepEqual(a.stats, b.stats);
    }
    assert.notEqual((await runSeed(7)).traceDigest, (await runSeed(8)).traceDigest);
  });
});
