/**
 * The long fault-injection runner (`npm run test:faults -- …`):
 *
 *   node --import tsx test/faults/cli.ts [--runs N] [--nemesis NAME|all] [--nodes 3|5]
 *       [--seconds S] [--seed X] [--clients C] [--workload sql,cache] [--report FILE] [--verbose]
 *       [--tsx]
 *
 * Run i uses seed X + i; with `--nemesis all` every nemesis runs once per seed, one after the
 * other (the machine is small: never in parallel). Each run prints its seed and outcome, a failing
 * one the folder with its files; the end prints a table per run and one per nemesis. Replay the
 * decisions of one run with `--runs 1 --seed <its seed> --nemesis <its nemesis>`. The nodes run
 * compiled, as users run them (compiled-product.ts); `--tsx` runs them from the sources.
 * Exit code 1 when a run fails.
 */
import { appendFileSync } from 'node:fs';
import { parseCliArgs } from '../support/cli-args.js';
import { type CompiledProduct, compileProduct } from './compiled-product.js';
import { CACHE_MEMORY_NEMESES, isNemesisName, NEMESES, type NemesisName } from './nemesis.js';
import { formatRunLine, formatRunTable, formatSummaryTable } from './report.js';
import { type RunReport, runOnce, WORKLOADS, type WorkloadName } from './runner.js';

const USAGE = `npm run test:faults -- [--runs N] [--nemesis NAME|all] [--nodes 3|5] [--seconds S] [--seed X]
  [--clients C] [--workload sql,cache] [--cache-memory [--cache-loss]] [--hold-ms LO,HI] [--report FILE] [--verbose] [--tsx]
  (docs/FAULTS.md)`;

const { values } = parseCliArgs(
  {
    runs: { type: 'string', default: '1' },
    nemesis: { type: 'string', default: 'all' },
    nodes: { type: 'string', default: '3' },
    seconds: { type: 'string', default: '20' },
    seed: { type: 'string' },
    clients: { type: 'string' },
    report: { type: 'string' },
    workload: { type: 'string', default: 'sql,cache' },
    verbose: { type: 'boolean', default: false },
    // The cache group kept in memory; only the nemeses that never take a majority's state.
    'cache-memory': { type: 'boolean', default: false },
    // With --cache-memory: kills may take a majority's cache state; recovery is checked.
    'cache-loss': { type: 'boolean', default: false },
    // How long a fault episode is held, ms: [LO, HI) (default 1000,5000).
    'hold-ms': { type: 'string' },
    // Run the nodes through tsx from the sources instead of compiled (compiled-product.ts).
    tsx: { type: 'boolean', default: false },
  },
  USAGE,
);

function intArg(name: string, v: string | undefined, lo: number, hi: number): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isInteger(n) || n < lo || n > hi) {
    console.error(`--${name} must be an integer in [${lo}, ${hi}], got ${v}`);
    process.exit(2);
  }
  return n;
}

const runs = intArg('runs', values.runs, 1, 100_000) as number;
const nodes = intArg('nodes', values.nodes, 3, 5) as number;
if (nodes !== 3 && nodes !== 5) {
  console.error('--nodes must be 3 or 5');
  process.exit(2);
}
const seconds = intArg('seconds', values.seconds, 1, 3600) as number;
const clients = intArg('clients', values.clients, 1, 64);
const firstSeed = intArg('seed', values.seed, 0, 2 ** 32 - 1) ?? Math.floor(Math.random() * 2 ** 31);
let holdMs: readonly [number, number] | undefined;
if (values['hold-ms'] !== undefined) {
  const parts = values['hold-ms'].split(',').map((x) => Number(x));
  const [lo, hi] = parts as [number, number];
  if (
    parts.length !== 2 ||
    !parts.every((x) => Number.isInteger(x)) ||
    lo < 100 ||
    hi <= lo ||
    hi > 600_000
  ) {
    console.error(`--hold-ms must be LO,HI: integers, 100 <= LO < HI <= 600000, got ${values['hold-ms']}`);
    process.exit(2);
  }
  holdMs = [lo, hi];
}
const cacheLoss = values['cache-loss'] === true;
const cacheMemory = values['cache-memory'] === true || cacheLoss;
const allowed: readonly NemesisName[] = cacheMemory ? CACHE_MEMORY_NEMESES : NEMESES;
const nemeses: NemesisName[] = [];
if (values.nemesis === 'all') nemeses.push(...allowed);
else {
  for (const name of (values.nemesis ?? '').split(',')) {
    if (!isNemesisName(name) || !allowed.includes(name)) {
      console.error(
        `--nemesis must be all or one of ${allowed.join(', ')} (comma-separated${cacheMemory ? '; with --cache-memory, the nemeses that never take a majority of the nodes' : ''}), got ${name}`,
      );
      process.exit(2);
    }
    nemeses.push(name);
  }
}

const workloads: WorkloadName[] = [];
for (const name of (values.workload ?? '').split(',')) {
  if (!(WORKLOADS as readonly string[]).includes(name)) {
    console.error(`--workload must be a comma-separated list of ${WORKLOADS.join(', ')}, got ${name}`);
    process.exit(2);
  }
  workloads.push(name as WorkloadName);
}

console.log(
  `fault runs: ${runs} × [${nemeses.join(', ')}], ${nodes} nodes, ${seconds} s each, workloads ${workloads.join('+')}${cacheMemory ? `, cache group in memory${cacheLoss ? ' (a majority may lose it)' : ''}` : ''}, seeds ${firstSeed}…${firstSeed + runs - 1}`,
);
let product: CompiledProduct | null = null;
if (!values.tsx) {
  product = compileProduct();
  process.env.HQL_FAULTS_NODE_CLI = product.cli;
  process.once('exit', () => product?.remove());
  console.log(`nodes run compiled (${product.cli}); --tsx runs them from the sources`);
}
const reports: RunReport[] = [];
let interrupted = false;
process.once('SIGINT', () => {
  interrupted = true;
  console.log('\ninterrupted: finishing the current run, then printing the summary');
});
// Bounded: runs × nemeses iterations.
outer: for (let i = 0; i < runs; i++) {
  for (const nemesis of nemeses) {
    if (interrupted) break outer;
    const seed = firstSeed + i;
    const report = await runOnce({
      nemesis,
      seed,
      nodes,
      seconds,
      workloads,
      cacheMemory,
      cacheLoss,
      ...(holdMs === undefined ? {} : { holdMs }),
      ...(clients === undefined ? {} : { clients }),
      ...(values.verbose ? { log: (line: string) => console.log(`    ${line}`) } : {}),
    });
    reports.push(report);
    console.log(formatRunLine(reports.length, report));
    if (!report.ok) {
      for (const c of report.checks.filter((x) => !x.ok)) {
        console.log(`    ${c.name}: ${c.detail.split('\n').join('\n    ')}`);
      }
      console.log(`    faults: ${report.faults.join('; ') || '(none)'}`);
      console.log(`    files: ${report.folder ?? '(none)'}`);
      console.log(
        `    replay: node --import tsx test/faults/cli.ts --runs 1 --seed ${seed} --nemesis ${nemesis} --nodes ${nodes} --seconds ${seconds} --workload ${workloads.join(',')}${cacheMemory ? ' --cache-memory' : ''}${cacheLoss ? ' --cache-loss' : ''}${holdMs === undefined ? '' : ` --hold-ms ${holdMs.join(',')}`}`,
      );
    }
    if (values.report !== undefined) appendFileSync(values.report, `${JSON.stringify(report)}\n`);
  }
}

console.log(`\n${formatRunTable(reports)}\n\n${formatSummaryTable(reports)}`);
const failed = reports.filter((r) => !r.ok);
if (failed.length > 0) {
  console.log(`\n${failed.length} of ${reports.length} runs FAILED:`);
  for (const r of failed) console.log(`  seed ${r.seed} ${r.nemesis}: ${r.folder ?? '(no files)'}`);
}
process.exit(failed.length > 0 ? 1 : 0);
