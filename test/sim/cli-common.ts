/** What the two simulators' command lines (cli.ts, cache/cli.ts) share. */

/** The options both take (parseCliArgs). */
export const SIM_CLI_OPTIONS = {
  seeds: { type: 'string' },
  seed: { type: 'string' },
  first: { type: 'string' },
  'planted-bugs': { type: 'boolean', default: false },
  bug: { type: 'string' },
  'max-seeds': { type: 'string' },
  'chaos-ms': { type: 'string' },
  'trace-lines': { type: 'string' },
  verbose: { type: 'boolean', default: false },
} as const;

/** `--name` as a non-negative integer (`fallback` when absent); exits 2 on anything else. */
export function intArg(name: string, v: string | undefined, fallback: number): number {
  if (v === undefined) return fallback;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0) {
    console.error(`--${name} must be a non-negative integer, got ${v}`);
    process.exit(2);
  }
  return n;
}

/** The seeds a run asks for: `--seed S` alone, else `--seeds N` (100) from `--first S` (1). */
export function seedsOf(values: { seed?: string; first?: string; seeds?: string }): number[] {
  if (values.seed !== undefined) return [intArg('seed', values.seed, 1)];
  const first = intArg('first', values.first, 1);
  const count = intArg('seeds', values.seeds, 100);
  return Array.from({ length: count }, (_, i) => first + i);
}

/** A failed seed's report: checker, explanation, scenario, the last events and how to replay it. */
export function printFailure(
  r: {
    readonly seed: number;
    readonly profile: string;
    readonly failure: {
      readonly checker: string;
      readonly message: string;
      readonly trace: readonly string[];
    } | null;
  },
  replay: string,
): void {
  const f = r.failure;
  if (f === null) return;
  console.log(`\nFAIL seed ${r.seed}: ${f.checker}`);
  console.log(`  ${f.message.split('\n').join('\n  ')}`);
  console.log(`  scenario: ${r.profile}`);
  console.log('  last events:');
  for (const line of f.trace) console.log(`    ${line}`);
  console.log(`  replay: ${replay}`);
}
