/**
 * `hiqlite generate-config`: one TOML file per node of a localhost cluster, with fresh secrets.
 */
import { existsSync } from 'node:fs';
import { generateConfig, writeGeneratedConfig } from '../node/config/config.js';
import { cliError } from './cli-error.js';

export function runGenerateConfig(o: {
  nodes: number;
  dir: string;
  overwrite: boolean;
  basePort: number;
}): void {
  const generated = generateConfig({
    nodes: o.nodes,
    dir: o.dir,
    basePortRaft: o.basePort,
    basePortApi: o.basePort + 100,
  });
  // Checked for every file before any is written: replacing some files and not others would
  // leave nodes with different secrets.
  const existing = generated.files.filter((f) => existsSync(f.path)).map((f) => f.path);
  if (existing.length > 0 && !o.overwrite) {
    throw cliError(
      'HQL_INVALID_PARAMS',
      `${existing.join(', ')} already exist${existing.length === 1 ? 's' : ''}: pass --overwrite to replace ` +
        `${existing.length === 1 ? 'it' : 'them'} (the new files have new secrets, which lock out nodes ` +
        'still running with the old ones), or choose another folder with --dir',
    );
  }
  writeGeneratedConfig(generated, { overwrite: o.overwrite });
  for (const f of generated.files) process.stdout.write(`wrote ${f.path}\n`);
  process.stdout.write(
    '\nstart each node (node 1 first; it bootstraps the cluster), e.g. in its own terminal:\n',
  );
  for (const f of generated.files) process.stdout.write(`  npx hiqlite serve --config ${f.path}\n`);
}
