/**
 * Every bug planted in the core (RaftConfig.plantedBugs) is caught by the simulator's ordinary
 * checkers within a bounded number of seeds, and the failing seed passes with the bug removed.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { huntPlantedBug } from './planted.js';
import { PLANTED_BUGS } from './profile.js';

/** Seeds tried per bug before declaring that the checkers missed it. */
const SEEDS_MAX = 3_000;

describe('planted bugs are caught', () => {
  for (const bug of PLANTED_BUGS) {
    test(`${bug} is caught within ${SEEDS_MAX} seeds`, async (t) => {
      const r = await huntPlantedBug(bug, { seedsMax: SEEDS_MAX });
      assert.ok(r.caught !== null, `${bug} escaped ${r.seedsRun} seeds`);
      t.diagnostic(`${bug}: caught by ${r.caught.checker} at seed ${r.caught.seed} (${r.seedsRun} seeds)`);
    });
  }
});
