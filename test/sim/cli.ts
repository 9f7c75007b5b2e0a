/**
 * `npm run sim -- --seeds N [--seed S] [--first S] [--planted-bugs] [--bug NAME] [--verbose] [--chaos-ms MS]
 *   [--no-durability-check]`
 *
 * Runs the deterministic simulator over seeds [first, first + N) (or one seed), prints every
 * failure with its seed, checker, recent trace and replay command, then a summary. With
 * --planted-bugs, hunts each planted bug alone (or only --bug NAME) and prints the seed and
 * checker that caught it; --bug NAME without --planted-bugs runs seeds with that bug planted
 * (to replay a catch).
 * Exit code 1 when a seed fails (or a planted bug escapes).
 */
import { parseCliArgs } from '../support/cli-args.js';
import { intArg, printFailure, SIM_CLI_OPTIONS, seedsOf } from './cli-common.js';
import { HUNT_SEEDS_MAX_DEFAULT, huntPlantedBug } from './planted.js';
import { PLANTED_BUGS, type PlantedBugName } from './profile.js';
import { type RunStats, runSeed, type SeedResult, type SimOptions } from './simulation.js';

const USAGE = `npm run sim -- [--seeds N] [--first S] [--seed S] [--planted-bugs] [--bug NAME] [--max-seeds N]
  [--chaos-ms MS] [--trace-lines N] [--verbose] [--no-durability-check]
  (docs/internals/simulator.md)`;

const { values } = parseCliArgs(
  {
    ...SIM_CLI_OPTIONS,
    'no-durability-check': { type: 'boolean', default: false },
  },
  USAGE,
);

function bugArg(): PlantedBugName | undefined {
  const b = values.bug;
  if (b === undefined) return undefined;
  if (!(PLANTED_BUGS as readonly string[]).includes(b)) {
    console.error(`--bug must be one of ${PLANTED_BUGS.join(', ')}`);
    process.exit(2);
  }
  return b as PlantedBugName;
}

const plantedBug = bugArg();

/** Options for ordinary runs (a --bug outside --planted-bugs replays that bug's scenario). */
const simOptions: SimOptions = {
  ...(values['chaos-ms'] === undefined ? {} : { chaosMs: intArg('chaos-ms', values['chaos-ms'], 0) }),
  ...(values['trace-lines'] === undefined
    ? {}
    : { traceLines: intArg('trace-lines', values['trace-lines'], 60) }),
  ...(plantedBug === undefined || values['planted-bugs'] ? {} : { plantedBug }),
  ...(values['no-durability-check'] ? { durabilityCheck: false } : {}),
};

/** Appended to replay commands: the run's checks, as given. */
const noDurability = values['no-durability-check'] ? ' --no-durability-check' : '';

function replayCommand(seed: number): string {
  const chaos = values['chaos-ms'] === undefined ? '' : ` --chaos-ms ${values['chaos-ms']}`;
  const bug = plantedBug === undefined ? '' : ` --bug ${plantedBug}`;
  return `npm run sim -- --seed ${seed}${chaos}${bug}${noDurability} --verbose`;
}

async function runSeeds(seeds: number[]): Promise<number> {
  const totals = new Map<keyof RunStats, number>();
  const failed: SeedResult[] = [];
  const t0 = performance.now();
  let slowest = { seed: 0, ms: 0 };
  for (const seed of seeds) {
    const seedT0 = performance.now();
    const r = await runSeed(seed, simOptions);
    const seedMs = performance.now() - seedT0;
    if (seedMs > slowest.ms) slowest = { seed, ms: seedMs };
    for (const [k, v] of Object.entries(r.stats) as Array<[keyof RunStats, number]>) {
      totals.set(k, (totals.get(k) ?? 0) + v);
    }
    if (values.verbose) {
      console.log(
        `seed ${seed} ${r.ok ? 'ok' : 'FAIL'} ${seedMs.toFixed(0)}ms trace=${r.traceDigest} ${r.profile}`,
      );
      console.log(`  ${JSON.stringify(r.stats)}`);
    }
    if (!r.ok) {
      failed.push(r);
      printFailure(r, replayCommand(r.seed));
    }
    // A long run says how far it got (on stderr: the summary on stdout stays as it was).
    const done = seeds.indexOf(seed) + 1;
    if (seeds.length >= 1000 && done % 500 === 0)
      console.error(
        `seeds done: ${done} of ${seeds.length}, failed: ${failed.length}, ${((performance.now() - t0) / 1000).toFixed(0)}s`,
      );
  }
  const elapsedMs = performance.now() - t0;
  const t = (k: keyof RunStats) => totals.get(k) ?? 0;
  const perMinute = (seeds.length / elapsedMs) * 60_000;
  console.log(
    `\nseeds run: ${seeds.length}, failed: ${failed.length}${failed.length > 0 ? ` (${failed.map((r) => r.seed).join(', ')})` : ''}`,
  );
  console.log(
    `time: ${(elapsedMs / 1000).toFixed(1)}s, ${perMinute.toFixed(0)} seeds/minute (slowest: seed ${slowest.seed}, ${slowest.ms.toFixed(0)}ms)`,
  );
  console.log(
    `leaders elected: ${t('leadersElected')}, entries committed: ${t('entriesCommitted')}, crashes: ${t('crashes')} (torn writes ${t('tornWrites')}, lost writes ${t('lostWrites')}), partitions: ${t('partitions')}`,
  );
  console.log(
    `snapshots: ${t('snapshotsTaken')} taken, ${t('snapshotsFailed')} failed (disk full), ${t('snapshotsInstalled')} installed; entries read back from disk: ${t('entriesReadBack')}; membership changes: ${t('membershipApplied')} committed (${t('membershipProposed')} proposed); leadership transfers: ${t('transfers')}`,
  );
  console.log(
    `processes killed: ${t('kills')}, power losses of every machine: ${t('powerLossesAll')}, operator wipes: ${t('wipes')} (states discarded at start: ${t('discards')}, nodes added back: ${t('joins')}, joins completed: ${t('rejoined')}; node 1's bootstrap proofs: ${t('bootstrapProofs')}, ended in a join: ${t('bootstrapProofsJoined')}); crashes during membership changes: ${t('crashesDuringMembership')}, during snapshot installs: ${t('crashesDuringSnapshotInstall')}; restores of an older copy: ${t('restores')} (${t('restoredEntriesLost')} acknowledged entries lost)`,
  );
  console.log(
    `messages: ${t('messagesSent')} sent, ${t('messagesDropped')} dropped; API requests and answers: ${t('apiSent')} sent, ${t('apiLost')} lost; ops checked: ${t('opsChecked')} (${t('opsUnknown')} with unknown outcome); linearizability budget exhausted: ${t('linearizabilityUnknown')} seeds`,
  );
  return failed.length === 0 ? 0 : 1;
}

async function runPlantedBugs(): Promise<number> {
  const first = intArg('first', values.first, 1);
  const seedsMax = intArg('max-seeds', values['max-seeds'], HUNT_SEEDS_MAX_DEFAULT);
  let escaped = 0;
  for (const bug of PLANTED_BUGS.filter((b) => plantedBug === undefined || b === plantedBug)) {
    const t0 = performance.now();
    const r = await huntPlantedBug(bug, { first, seedsMax, sim: simOptions });
    const secs = ((performance.now() - t0) / 1000).toFixed(1);
    if (r.caught === null) {
      escaped++;
      console.log(`${bug}: NOT caught in ${r.seedsRun} seeds (${secs}s)`);
    } else {
      const firstLine = r.caught.message.split('\n')[0];
      console.log(
        `${bug}: caught by ${r.caught.checker} at seed ${r.caught.seed} after ${r.seedsRun} seeds (${secs}s)`,
      );
      console.log(`  ${firstLine}`);
      console.log(`  replay: npm run sim -- --seed ${r.caught.seed} --bug ${bug}${noDurability} --verbose`);
    }
    if (r.unattributed.length > 0) {
      const list = r.unattributed.map((u) => `${u.seed} (${u.checker})`).join(', ');
      console.log(`  seeds that failed with and without the bug (not counted): ${list}`);
    }
  }
  return escaped === 0 ? 0 : 1;
}

function main(): Promise<number> {
  if (values['planted-bugs']) return runPlantedBugs();
  return runSeeds(seedsOf(values));
}

process.exitCode = await main();
