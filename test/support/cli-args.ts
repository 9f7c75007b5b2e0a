/**
 * Argument parsing for the project's own command-line tools (simulator, fault suite, benchmarks):
 * `--help` / `-h` prints the usage and exits 0; an unknown or malformed option prints the reason
 * and the usage and exits 2, instead of a stack trace.
 */
import { type ParseArgsConfig, parseArgs } from 'node:util';

type Options = NonNullable<ParseArgsConfig['options']>;
type OptionValue<T> = T extends { readonly type: 'boolean' } ? boolean : string;

/** What `parseArgs` gives for `O`: options with a default are always there, others may be absent. */
export type CliValues<O extends Options> = {
  -readonly [K in keyof O as O[K] extends { readonly default: unknown } ? K : never]: OptionValue<O[K]>;
} & {
  -readonly [K in keyof O as O[K] extends { readonly default: unknown } ? never : K]?: OptionValue<O[K]>;
};

export function parseCliArgs<const O extends Options>(
  options: O,
  usage: string,
  args: string[] = process.argv.slice(2),
): { values: CliValues<O> } {
  let values: CliValues<O> & { help?: boolean };
  try {
    values = parseArgs({
      args,
      options: { ...options, help: { type: 'boolean', short: 'h', default: false } },
      strict: true,
    }).values as unknown as CliValues<O> & { help?: boolean };
  } catch (e) {
    console.error(`${(e as Error).message}\n${usage}`);
    process.exit(2);
  }
  if (values.help === true) {
    console.log(usage);
    process.exit(0);
  }
  return { values };
}
