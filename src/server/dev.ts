/**
 * `hiqlite dev`: a local cluster of separate `hiqlite serve` processes on 127.0.0.1, for trying
 * hiqlite out. Prints the API addresses and a copy-pasteable example; Ctrl-C stops every node
 * gracefully.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { generateConfig, writeGeneratedConfig } from '../node/config/config.js';

export async function runDev(o: {
  nodes: number;
  dir?: string;
  basePort: number;
  exitAfter?: number;
}): Promise<void> {
  const dir = o.dir === undefined ? mkdtempSync(join(tmpdir(), 'hiqlite-dev-')) : resolve(o.dir);
  const generated = generateConfig({
    nodes: o.nodes,
    dir,
    basePortRaft: o.basePort,
    basePortApi: o.basePort + 100,
  });
  writeGeneratedConfig(generated, { overwrite: true });
  const cli = process.argv[1] as string;
  const children: ChildProcess[] = [];
  const exited: Promise<number | null>[] = [];
  for (const f of generated.files) {
    const child = spawn(process.execPath, [...process.execArgv, cli, 'serve', '--config', f.path], {
      stdio: ['ignore', 'pipe', 'inherit'],
      env: { ...process.env, HQL_LOG_LEVEL: process.env.HQL_LOG_LEVEL ?? 'warn' },
    });
    children.push(child);
    exited.push(new Promise((r) => child.once('exit', (code) => r(code))));
  }
  // Every node prints READY once it is a member.
  await Promise.all(
    children.map(
      (c, i) =>
        new Promise<void>((ok, fail) => {
          let out = '';
          c.stdout?.on('data', (d: Buffer) => {
            out += d.toString();
            if (out.includes('READY')) ok();
          });
          c.once('exit', (code) =>
            fail(new Error(`node ${i + 1} exited with code ${code} before it was ready`)),
          );
        }),
    ),
  );
  const apis = generated.files.map((_, i) => `127.0.0.1:${o.basePort + 100 + i}`);
  process.stdout.write(
    [
      `hiqlite dev: ${o.nodes} nodes running (data in ${dir})`,
      ...apis.map((a, i) => `  node ${i + 1}: API http://${a}`),
      '',
      'try it:',
      `  curl -s -H 'X-API-SECRET: ${generated.secretApi}' -d '{"sql":"CREATE TABLE IF NOT EXISTS notes (id INTEGER PRIMARY KEY, body TEXT)"}' http://${apis[0]}/execute`,
      `  curl -s -H 'X-API-SECRET: ${generated.secretApi}' -d '{"sql":"INSERT INTO notes (body) VALUES (?)","params":["hello"]}' http://${apis[1]}/execute`,
      `  curl -s -H 'X-API-SECRET: ${generated.secretApi}' -d '{"sql":"SELECT * FROM notes","consistency":"linearizable"}' http://${apis[2]}/query`,
      '',
      '  // from Node.js:',
      `  const db = await (await import('hiqlite')).connect({ nodes: ${JSON.stringify(apis)}, secretApi: '${generated.secretApi}' });`,
      `  await db.query('SELECT * FROM notes');`,
      '',
      'Ctrl-C stops the cluster.',
      '',
    ].join('\n'),
  );
  let stopping = false;
  const stop = async () => {
    if (stopping) return;
    stopping = true;
    for (const c of children) c.kill('SIGTERM');
    const codes = await Promise.race([
      Promise.all(exited),
      new Promise<null>((r) => setTimeout(() => r(null), 15_000).unref()),
    ]);
    if (codes === null) for (const c of children) c.kill('SIGKILL');
    process.stdout.write('hiqlite dev: stopped\n');
    process.exit(codes?.every((c) => c === 0) ? 0 : 1);
  };
  process.once('SIGINT', () => void stop());
  process.once('SIGTERM', () => void stop());
  if (o.exitAfter !== undefined) setTimeout(() => void stop(), o.exitAfter * 1000);
}
