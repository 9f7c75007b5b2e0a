/**
 * `npm run sim:cache -- --seeds N [--first S] [--seed S] [--planted-bugs] [--bug NAME] [--max-seeds N]
 *   [--chaos-ms MS] [--trace-lines N] [--verbose]`
 *
 * Runs the cache group's deterministic simulation (simulation.ts) over seeds [first, first + N)
 * (or one seed), prints every failure with its seed, checker, recent trace and replay command,
 * then a summary. With --planted-bugs, hunts each planted bug alone (or only --bug NAME) and
 * prints the seed and checker that caught it (the re-founding's bugs with --cache-loss). Exit code
 * 1 when a seed fails or a bug escapes.
 */
import { parseCliArgs } from '../../support/cli-args.js';
import { intArg, printFailure, SIM_CLI_OPTIONS, seedsOf } from '../cli-common.js';
import {
  CACHE_LOSS_PLANTED_BUGS,
  CACHE_PLANTED_BUGS,
  type CacheLossPlantedBugName,
  type CachePlantedBugName,
  type CacheRunStats,
  type CacheSimOptions,
  huntCacheBug,
  runCacheSeed,
} from './simulation.js';

const USAGE = `npm run sim:cache -- [--seeds N] [--first S] [--seed S] [--planted-bugs] [--bug NAME] [--max-seeds N]
  [--chaos-ms MS] [--trace-lines N] [--cache-loss] [--verbose]
  (docs/internals/simulator.md, "The cache group")`;

const { values } = parseCliArgs(
  {
    ...SIM_CLI_OPTIONS,
    'cache-loss': { type: 'boolean', default: false },
  },
  USAGE,
);

type BugName = CachePlantedBugName | CacheLossPlantedBugName;
const ALL_BUGS: readonly BugName[] = [...CACHE_PLANTED_BUGS, ...CACHE_LOSS_PLANTED_BUGS];
const bug = values.bug;
if (bug !== undefined && !(ALL_BUGS as readonly string[]).includes(bug)) {
  console.error(`--bug must be one of ${ALL_BUGS.join(', ')}`);
  process.exit(2);
}
const plantedBug = bug as BugName | undefined;
const lossBug = (CACHE_LOSS_PLANTED_BUGS as readonly string[]).includes(bug ?? '');

const baseOptions: CacheSimOptions = {
  ...(values['cache-loss'] === true || lossBug ? { cacheLoss: true } : {}),
  ...(values['chaos-ms'] === undefined ? {} : { chaosMs: intArg('chaos-ms', values['chaos-ms'], 0) }),
  ...(values['trace-lines'] === undefined
    ? {}
    : { traceLines: intArg('trace-lines', values['trace-lines'], 80) }),
};

function replay(seed: number, bugName: BugName | undefined): string {
  const chaos = values['chaos-ms'] === undefined ? '' : ` --chaos-ms ${values['chaos-ms']}`;
  const loss =
    values['cache-loss'] === true || (CACHE_LOSS_PLANTED_BUGS as readonly string[]).includes(bugName ?? '')
      ? ' --cache-loss'
      : '';
  return `npm run sim:cache -- --seed ${seed}${chaos}${loss}${bugName === undefined ? '' : ` --bug ${bugName}`} --verbose`;
}

async function runSeeds(seeds: number[]): Promise<number> {
  const totals = new Map<keyof CacheRunStats, number>();
  const failed: number[] = [];
  const t0 = performance.now();
  for (const [i, seed] of seeds.entries()) {
    const seedT0 = performance.now();
    const r = await runCacheSeed(seed, {
      ...baseOptions,
      ...(plantedBug === undefined ? {} : { plantedBug }),
    });
    for (const [k, v] of Object.entries(r.stats) as Array<[keyof CacheRunStats, number]>) {
      totals.set(k, (totals.get(k) ?? 0) + v);
    }
    if (values.verbose) {
      console.log(
        `seed ${seed} ${r.ok ? 'ok' : 'FAIL'} ${(performance.now() - seedT0).toFixed(0)}ms trace=${r.traceDigest} ${r.profile}`,
      );
      console.log(`  ${JSON.stringify(r.stats)}`);
    }
    if (!r.ok) {
      failed.push(seed);
      printFailure(r, replay(r.seed, plantedBug));
    }
    if (seeds.length >= 1000 && (i + 1) % 1000 === 0)
      console.error(`seeds done: ${i + 1} of ${seeds.length}, failed: ${failed.length}`);
  }
  const secs = (performance.now() - t0) / 1000;
  console.log(
    `\nseeds run: ${seeds.length}, failed: ${failed.length}${failed.length > 0 ? ` (${failed.join(', ')})` : ''}; ${secs.toFixed(1)}s`,
  );
  console.log(
    Object.entries(Object.fromEntries(totals))
      .map(([k, v]) => `${k} ${v}`)
      .join(', '),
  );
  return failed.length === 0 ? 0 : 1;
}

/**
 * Each planted bug alone over seeds until one is caught (huntCacheBug): the re-founding's bugs
 * with --cache-loss (or --bug naming one), the others without.
 */
async function runPlantedBugs(): Promise<number> {
  const first = intArg('first', values.first, 1);
  const seedsMax = intArg('max-seeds', values['max-seeds'], 1000);
  let escaped = 0;
  const bugs: readonly BugName[] =
    plantedBug !== undefined
      ? [plantedBug]
      : values['cache-loss'] === true
        ? CACHE_LOSS_PLANTED_BUGS
        : CACHE_PLANTED_BUGS;
  for (const b of bugs) {
    const t0 = performance.now();
    const { caught, seedsRun: run } = await huntCacheBug(b, { first, seedsMax, options: baseOptions });
    const secs = ((performance.now() - t0) / 1000).toFixed(1);
    if (caught === null || caught.failure === null) {
      escaped++;
      console.log(`${b}: NOT caught in ${run} seeds (${secs}s)`);
      continue;
    }
    console.log(
      `${b}: caught by ${caught.failure.checker} at seed ${caught.seed} after ${run} seeds (${secs}s)`,
    );
    console.log(`  ${caught.failure.message.split('\n')[0]}`);
    console.log(`  replay: ${replay(caught.seed, b)}`);
  }
  return escaped === 0 ? 0 : 1;
}

function main(): Promise<number> {
  if (values['planted-bugs']) return runPlantedBugs();
  return runSeeds(seedsOf(values));
}

process.exitCode = await main();
