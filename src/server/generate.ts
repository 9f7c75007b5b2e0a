import { generateConfig, writeGeneratedConfig } from '../node/config/config.js';

export function runGenerateConfig(o: { nodes: number; dir: string; overwrite: boolean }): void {
  const generated = generateConfig({ nodes: o.nodes, dir: o.dir });
  writeGeneratedConfig(generated, { overwrite: o.overwrite });
  for (const f of generated.files) process.stdout.write(`wrote ${f.path}\n`);
  process.stdout.write(
    `\nrun each node with:  npx hiqlite serve --config ${generated.files[0]?.path ?? '<file>'}\n`,
  );
}
