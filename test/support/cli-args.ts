/**
 * Argument parsing for the project's own command-line tools (simulator, fault suite, benchmarks):
 * `--help` / `-h` prints the usage and exits 0; an unknown or malformed option prints the reason
 * and the usage and exits 2, instead of a stack trace.
 *
 *   const { values } = parseCliArgs(() => parseArgs({ options: { ...HELP_OPTION, … }, strict: true }), USAGE);
 */

/** The `--help` / `-h` option every tool takes. */
export const HELP_OPTION = { help: { type: 'boolean', short: 'h', default: false } } as const;

export function parseCliArgs<T extends { readonly values: object }>(parse: () => T, usage: string): T {
  let parsed: T;
  try {
    parsed = parse();
  } catch (e) {
    console.error(`${(e as Error).message}\n${usage}`);
    process.exit(2);
  }
  if ((parsed.values as { help?: boolean }).help === true) {
    console.log(usage);
    process.exit(0);
  }
  return parsed;
}
