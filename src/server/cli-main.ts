/**
 * The `hiqlite` command: `serve` runs one node, `generate-config` writes a localhost cluster
 * configuration, `dev` runs a local cluster of separate processes, `proxy` forwards the API
 * protocols to a cluster.
 */
import { readFileSync } from 'node:fs';
import { Command, InvalidArgumentError, type Option } from 'commander';
import { HiqliteError } from '../lib/errors.js';
import { GENERATE_NODES_MAX } from '../node/config/config-generate.js';
import { NODE_ID_MAX } from '../node/config/config-keys.js';
import { runProxy } from '../proxy/run-proxy.js';
import { registerBackupCommands } from './backup-cli.js';
import { runDev } from './dev.js';
import { runGenerateConfig } from './generate.js';
import { runHashPassword } from './hash-password.js';
import { registerMembershipCommands } from './membership-cli.js';
import { runServe } from './serve.js';

function int(name: string, min: number, max: number) {
  return (v: string): number => {
    // Decimal digits only: Number() also takes '0x1f', '1e3', ' 3 ' and '0b11'.
    const n = /^[0-9]{1,16}$/.test(v) ? Number(v) : Number.NaN;
    if (!Number.isInteger(n) || n < min || n > max)
      throw new InvalidArgumentError(`${name} must be an integer in [${min}, ${max}]`);
    return n;
  };
}

/** The package's version: package.json is two levels up from both src/server and dist/server. */
function packageVersion(): string {
  const json = readFileSync(new URL('../../package.json', import.meta.url), 'utf8');
  return (JSON.parse(json) as { version: string }).version;
}

/**
 * Commander checks required options before unknown ones, so `serve --confg x` said "required
 * option '-c, --config <file>' not specified" about an option the user had typed, misspelled.
 * For every command: its required options are checked after the unknown-option check (which
 * names the option and suggests the nearest one), in a preAction hook, with commander's words.
 */
function unknownOptionsFirst(root: Command): void {
  const required = new Map<Command, Option[]>();
  const collect = (cmd: Command): void => {
    const own = cmd.options.filter((o) => o.mandatory);
    for (const o of own) o.mandatory = false;
    if (own.length > 0) required.set(cmd, own);
    for (const sub of cmd.commands) collect(sub);
  };
  collect(root);
  root.hook('preAction', (_root, action) => {
    for (const o of required.get(action) ?? []) {
      if (action.getOptionValue(o.attributeName()) === undefined)
        action.error(`error: required option '${o.flags}' not specified`, {
          code: 'commander.missingMandatoryOptionValue',
        });
    }
  });
}

const program = new Command()
  .name('hiqlite')
  .description('Embeddable SQLite that forms a Raft cluster')
  .version(packageVersion(), '-V, --version', 'print the version of hiqlite')
  .showHelpAfterError();

program
  .command('serve')
  .description('run one node until SIGTERM / SIGINT / SIGHUP (a graceful stop)')
  .requiredOption(
    '-c, --config <file>',
    'TOML file with a [hiqlite] table (every key overridable by HQL_<KEY>)',
  )
  .option('--node-id <n>', 'override node_id', int('--node-id', 1, 2 ** 32 - 1))
  .action((o: { config: string; nodeId?: number }) => runServe(o));

program
  .command('generate-config')
  .description('write a working localhost configuration, one TOML file per node')
  .option('-n, --nodes <n>', 'number of nodes', int('--nodes', 1, GENERATE_NODES_MAX), 3)
  .option('-d, --dir <dir>', 'output folder', 'hiqlite-config')
  .option('--overwrite', 'replace existing files', false)
  .option(
    '--base-port <port>',
    "first Raft port; API ports start 100 above (the default is also hiqlite dev's: pick another to run both)",
    int('--base-port', 1024, 65000),
    8100,
  )
  .action((o: { nodes: number; dir: string; overwrite: boolean; basePort: number }) => runGenerateConfig(o));

program
  .command('dev')
  .description('start a local cluster in separate processes; Ctrl-C stops it')
  .option('-n, --nodes <n>', 'number of nodes', int('--nodes', 1, 7), 3)
  .option('-d, --dir <dir>', 'folder for configuration and data (default: a new temporary folder)')
  .option(
    '--base-port <port>',
    'first Raft port; API ports start 100 above',
    int('--base-port', 1024, 65000),
    8100,
  )
  .option(
    '--exit-after <seconds>',
    'stop by itself after this many seconds (for scripts)',
    int('--exit-after', 1, 86_400),
  )
  .action((o: { nodes: number; dir?: string; basePort: number; exitAfter?: number }) => runDev(o));

program
  .command('proxy')
  .description(
    'forward the API protocols to a cluster (a stable endpoint for outside clients) until SIGTERM / SIGINT / SIGHUP',
  )
  .requiredOption(
    '-c, --config <file>',
    'TOML file with a [hiqlite] table of proxy keys (every key overridable by HQL_<KEY>)',
  )
  .action((o: { config: string }) => runProxy(o));

registerBackupCommands(program);
registerMembershipCommands(program, int('<id>', 1, NODE_ID_MAX));

program
  .command('hash-password')
  .description(
    'print the Argon2id hash of a dashboard password for password_dashboard (reads standard input, or asks without echo)',
  )
  .action(() => runHashPassword());

unknownOptionsFirst(program);

/** Runs the command line (cli.ts loads this module, then calls it). */
export function main(): void {
  // A reader that stops reading (`hiqlite generate-config … | head -2`) is not a failure of the
  // command: without this the write threw EPIPE, unhandled, with a stack trace.
  process.stdout.on('error', (e: NodeJS.ErrnoException) => {
    if (e.code !== 'EPIPE') throw e;
    process.exit(0);
  });
  program.parseAsync(process.argv).catch((e: unknown) => {
    // A hiqlite error says its stable code (docs/ERRORS.md) before the message.
    const code = e instanceof HiqliteError ? `${e.code}: ` : '';
    process.stderr.write(`hiqlite: ${code}${e instanceof Error ? e.message : String(e)}\n`);
    process.exit(1);
  });
}
