/**
 * The package as a user gets it: `npm pack` (which builds dist/ through the `prepare` script),
 * installed into a new application, then imported from ESM and from CommonJS, its `hiqlite`
 * binary run, and TypeScript files type-checked against its declarations with `strict` and
 * `skipLibCheck: false` — where a type of a dev dependency in the public declarations fails.
 *
 * Offline and fast, by these choices:
 * - The app is installed with `npm ci --offline` from a lockfile made of this repository's own
 *   entries for the package's dependencies (the versions it is tested with), plus the tarball.
 *   `npm ci` of this repository put exactly those in npm's cache. (A plain `npm install --offline
 *   <tarball>` asks the cache for registry metadata that `npm ci` does not always store.)
 * - `--ignore-scripts`, then the app's better-sqlite3 is replaced by a symlink to this
 *   repository's already-built copy: its install script would download a prebuilt binary
 *   (network) or compile SQLite from source (~2 min). hiqlite's own install script (the optional
 *   native query-interrupt extension) is skipped too: hiqlite works without it.
 * - `@types/node` is a TypeScript user's own dev dependency; it is symlinked from here too.
 *
 * The checks also read README.md and docs/: every name they tell users to import must be exported.
 */
import assert from 'node:assert/strict';
import { type SpawnSyncReturns, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { freePorts } from '../support/free-ports.js';

const repo = resolve(import.meta.dirname, '..', '..');
const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';
/** Upper bound of every step (npm pack builds with tsc: seconds; a loaded machine: tens of them). */
const STEP_TIMEOUT_MS = 120_000;

function run(cmd: string, args: readonly string[], cwd: string): SpawnSyncReturns<string> {
  const r = spawnSync(cmd, args, { cwd, encoding: 'utf8', timeout: STEP_TIMEOUT_MS });
  const what = `${cmd} ${args.join(' ')} (in ${cwd})`;
  assert.equal(r.error, undefined, `${what}: ${r.error?.message}`);
  assert.equal(r.status, 0, `${what} exited with ${r.status ?? r.signal}\n${r.stdout}\n${r.stderr}`);
  return r;
}

interface PackageJson {
  readonly name: string;
  readonly version: string;
  readonly license?: string;
  readonly dependencies?: Record<string, string>;
  readonly bin?: Record<string, string>;
  readonly engines?: Record<string, string>;
}

interface LockEntry {
  readonly dev?: boolean;
}

/** Names the user documentation tells users to use from the package. */
function documentedNames(): string[] {
  const read = (f: string) => readFileSync(join(repo, f), 'utf8');
  const userDocs = ['README.md', 'docs/CONFIGURATION.md', 'docs/ERRORS.md'].map(read).join('\n');
  const names = new Set<string>();
  // `import { a, type B } from 'hiqlite'` in code examples.
  for (const m of userDocs.matchAll(/import\s*\{([^}]*)\}\s*from\s*'hiqlite'/g))
    for (const part of (m[1] as string).split(',')) names.add(part.trim().replace(/^type\s+/, ''));
  // `PascalCase` names (types, error classes), except JavaScript's own and AssertionError, which
  // ERRORS.md names as what a bug throws: nothing to catch, so not exported.
  for (const m of userDocs.matchAll(/`([A-Z][a-z][A-Za-z]*)`/g)) {
    const name = m[1] as string;
    if (!(name in globalThis) && name !== 'AssertionError') names.add(name);
  }
  // Library functions of the configuration (`loadTomlConfig(path)`, ...), except the client's
  // methods, which README.md's table lists (`| \`query(sql, params?, …)\` |`).
  const methods = new Set([...read('README.md').matchAll(/^\|\s*`([a-z][A-Za-z]+)\(/gm)].map((m) => m[1]));
  for (const m of read('docs/CONFIGURATION.md').matchAll(/`([a-z][A-Za-z]+)\(/g))
    if (!methods.has(m[1])) names.add(m[1] as string);
  names.delete('');
  return [...names].sort();
}

describe('the npm package, installed into a new application', () => {
  let tmp: string;
  let app: string;
  let pkg: PackageJson;

  before(() => {
    tmp = mkdtempSync(join(tmpdir(), 'hiqlite-package-'));
    app = join(tmp, 'app');
    mkdirSync(app);

    // A dist/ left from an earlier build would be packed as it is if `npm pack` built nothing:
    // the build starts by removing dist/, so this marker must not reach the tarball.
    const marker = 'dist/stale-build-marker.txt';
    mkdirSync(join(repo, 'dist'), { recursive: true });
    writeFileSync(join(repo, marker), 'left by test/package before npm pack; the build removes it\n');
    const packed = JSON.parse(run(npm, ['pack', '--json', '--pack-destination', tmp], repo).stdout) as Array<{
      filename: string;
      files: Array<{ path: string }>;
    }>;
    const tarball = packed[0]?.filename as string;
    const files = new Set(packed[0]?.files.map((f) => f.path));
    assert.ok(!files.has(marker), 'npm pack did not build dist/ (the prepare script)');
    for (const f of [
      'dist/index.js',
      'dist/index.d.ts',
      'dist/server/cli.js',
      'dist/sm/sql/worker.js',
      'LICENSE',
    ])
      assert.ok(files.has(f), `the tarball lacks ${f}`);
    for (const f of files) assert.ok(!/^(src|test|bench)\//.test(f), `the tarball ships ${f}`);

    run('tar', ['-xzf', tarball, 'package/package.json'], tmp);
    pkg = JSON.parse(readFileSync(join(tmp, 'package', 'package.json'), 'utf8')) as PackageJson;
    const dependencies = { [pkg.name]: `file:../${tarball}` };
    writeFileSync(
      join(app, 'package.json'),
      JSON.stringify({ name: 'app', version: '1.0.0', private: true, type: 'module', dependencies }),
    );
    const repoLock = JSON.parse(readFileSync(join(repo, 'package-lock.json'), 'utf8')) as {
      packages: Record<string, LockEntry>;
    };
    const packages: Record<string, unknown> = {
      '': { name: 'app', version: '1.0.0', dependencies },
      [`node_modules/${pkg.name}`]: {
        version: pkg.version,
        resolved: `file:../${tarball}`,
        license: pkg.license,
        dependencies: pkg.dependencies,
        bin: pkg.bin,
        engines: pkg.engines,
      },
    };
    for (const [path, entry] of Object.entries(repoLock.packages))
      if (path.startsWith('node_modules/') && entry.dev !== true) packages[path] = entry;
    writeFileSync(
      join(app, 'package-lock.json'),
      JSON.stringify({ name: 'app', version: '1.0.0', lockfileVersion: 3, requires: true, packages }),
    );
    run(npm, ['ci', '--offline', '--ignore-scripts', '--no-audit', '--no-fund'], app);

    rmSync(join(app, 'node_modules', 'better-sqlite3'), { recursive: true });
    symlinkSync(
      join(repo, 'node_modules', 'better-sqlite3'),
      join(app, 'node_modules', 'better-sqlite3'),
      'dir',
    );
    mkdirSync(join(app, 'node_modules', '@types'), { recursive: true });
    symlinkSync(
      join(repo, 'node_modules', '@types', 'node'),
      join(app, 'node_modules', '@types', 'node'),
      'dir',
    );
  });

  after(() => {
    if (tmp !== undefined) rmSync(tmp, { recursive: true, force: true });
  });

  test('ESM: import { start, connect } runs a one-node cluster and queries it, embedded and remote', async () => {
    const [raft, api] = await freePorts(2);
    writeFileSync(
      join(app, 'esm.mjs'),
      `import { start, connect } from 'hiqlite';
const [raft, api, dataDir] = process.argv.slice(2);
const secretApi = 'api-secret-0123456789';
const db = await start({
  nodeId: 1,
  nodes: [{ id: 1, addrRaft: '127.0.0.1:' + raft, addrApi: '127.0.0.1:' + api }],
  dataDir,
  secretRaft: 'raft-secret-0123456789',
  secretApi,
});
try {
  await db.execute('CREATE TABLE notes (body TEXT)');
  await db.execute('INSERT INTO notes (body) VALUES (?)', ['embedded']);
  const remote = await connect({ nodes: ['127.0.0.1:' + api], secretApi });
  try {
    await remote.execute('INSERT INTO notes (body) VALUES (?)', ['remote']);
    const rows = await remote.query('SELECT body FROM notes ORDER BY rowid', [], { consistency: 'linearizable' });
    console.log(JSON.stringify(rows));
  } finally {
    await remote.close();
  }
} finally {
  await db.close();
}
`,
    );
    const r = run(process.execPath, ['esm.mjs', String(raft), String(api), join(tmp, 'data')], app);
    // The node logs to stdout (pino JSON objects); the rows are the one line that is an array.
    const rows = r.stdout.split('\n').find((line) => line.startsWith('['));
    assert.deepEqual(JSON.parse(rows ?? 'null'), [{ body: 'embedded' }, { body: 'remote' }]);
  });

  test("CommonJS: require('hiqlite') gives the same exports as import", () => {
    writeFileSync(
      join(app, 'cjs.cjs'),
      `const hiqlite = require('hiqlite');
import('hiqlite').then((esm) => console.log(JSON.stringify([Object.keys(hiqlite).sort(), Object.keys(esm).sort()])));
`,
    );
    const r = run(process.execPath, ['cjs.cjs'], app);
    const [cjs, esm] = JSON.parse(r.stdout) as [string[], string[]];
    assert.ok(cjs.includes('start') && cjs.includes('connect'), `require() exports: ${cjs.join(', ')}`);
    assert.deepEqual(cjs, esm);
  });

  test('the hiqlite binary prints the package version', () => {
    const r = run(join(app, 'node_modules', '.bin', 'hiqlite'), ['--version'], app);
    assert.equal(r.stdout.trim(), pkg.version);
  });

  test('the error classes the documentation names are exported and extend HiqliteError', () => {
    const errors = documentedNames().filter((n) => n.endsWith('Error'));
    for (const expected of ['HiqliteError', 'ConfigError', 'LogCorruptionError'])
      assert.ok(errors.includes(expected), `the documentation scan misses ${expected}`);
    writeFileSync(
      join(app, 'errors.mjs'),
      `import * as h from 'hiqlite';
for (const name of ${JSON.stringify(errors)})
  if (typeof h[name] !== 'function' || !(h[name].prototype instanceof Error)) throw new Error(name + ' is not an exported error class');
  else if (name !== 'HiqliteError' && !(h[name].prototype instanceof h.HiqliteError)) throw new Error(name + ' does not extend HiqliteError');
`,
    );
    run(process.execPath, ['errors.mjs'], app);
  });

  test('TypeScript (strict, skipLibCheck: false) compiles against the declarations: every documented name, from ESM and CommonJS', () => {
    const names = documentedNames();
    for (const expected of ['loadEnvConfig', 'writeGeneratedConfig', 'NodeConfig', 'start'])
      assert.ok(names.includes(expected), `the documentation scan misses ${expected}`);
    writeFileSync(join(app, 'documented.ts'), `export { ${names.join(', ')} } from 'hiqlite';\n`);
    writeFileSync(
      join(app, 'tsconfig.json'),
      JSON.stringify({
        compilerOptions: {
          target: 'ES2022',
          module: 'NodeNext',
          moduleResolution: 'NodeNext',
          strict: true,
          skipLibCheck: false,
          noEmit: true,
          types: ['node'],
        },
        include: ['*.ts', '*.cts'],
      }),
    );
    writeFileSync(
      join(app, 'uses.ts'),
      `import {
  connect,
  type Consistency,
  type ErrorCode,
  HiqliteError,
  type HiqliteNode,
  type NodeConfig,
  type NodeMetrics,
  type QueryOptions,
  type StartOptions,
  start,
} from 'hiqlite';

export async function use(config: NodeConfig, options: StartOptions): Promise<NodeMetrics> {
  const node: HiqliteNode = await start(config, options);
  const consistency: Consistency = 'linearizable';
  const query: QueryOptions = { consistency };
  try {
    await node.query<{ n: number }>('SELECT 1 AS n', [], query);
  } catch (e) {
    if (e instanceof HiqliteError) {
      const code: ErrorCode = e.code;
      console.log(code, e.retryable);
    }
  }
  const remote = await connect({ nodes: ['127.0.0.1:8200'], secretApi: 'x'.repeat(16) });
  await remote.close();
  return node.metrics();
}
`,
    );
    writeFileSync(
      join(app, 'uses-require.cts'),
      `import { start, type HiqliteNode } from 'hiqlite';
export const started: (c: Parameters<typeof start>[0]) => Promise<HiqliteNode> = (c) => start(c);
`,
    );
    const tsc = join(repo, 'node_modules', 'typescript', 'bin', 'tsc');
    run(process.execPath, [tsc, '-p', 'tsconfig.json'], app);
  });
});
