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
 *   (network) or compile SQLite from source (~2 min). hiqlite's own install script (its SQLite
 *   extension, which a node with SQLite needs) is then run by `npm rebuild hiqlite`, as the start
 *   error tells a user whose install skipped it.
 * - `@types/node` is a TypeScript user's own dev dependency; it is symlinked from here too.
 *
 * The checks also read README.md and docs/: every name they tell users to import must be exported.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, type SpawnSyncReturns, spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { freePorts } from '../support/free-ports.js';

const repo = resolve(import.meta.dirname, '..', '..');
const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';
/** Upper bound of every step (npm pack builds with tsc: seconds; a loaded machine: tens of them). */
const STEP_TIMEOUT_MS = 120_000;

function run(cmd: string, args: readonly string[], cwd: string, input?: string): SpawnSyncReturns<string> {
  const r = spawnSync(cmd, args, {
    cwd,
    encoding: 'utf8',
    timeout: STEP_TIMEOUT_MS,
    ...(input === undefined ? {} : { input }),
  });
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

/** A long-running `hiqlite` process of the installed package (serve, proxy), killed by kill(). */
class Daemon {
  output = '';
  private readonly exit: Promise<void>;
  private exited = false;

  constructor(
    private readonly child: ChildProcess,
    readonly name: string,
  ) {
    const onData = (d: Buffer) => {
      this.output = (this.output + d.toString()).slice(-200_000);
    };
    child.stdout?.on('data', onData);
    child.stderr?.on('data', onData);
    this.exit = new Promise((r) =>
      child.once('exit', () => {
        this.exited = true;
        r();
      }),
    );
  }

  static start(bin: string, args: readonly string[], cwd: string, name: string): Daemon {
    const child = spawn(bin, args, {
      cwd,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, HQL_LOG_LEVEL: 'warn' },
    });
    return new Daemon(child, name);
  }

  /** Resolves once the process printed `READY`; rejects if it exits first or after STEP_TIMEOUT_MS. */
  async ready(): Promise<void> {
    const deadline = Date.now() + STEP_TIMEOUT_MS;
    while (!this.output.includes('READY')) {
      if (this.exited) throw new Error(`${this.name} exited before READY:\n${this.output.slice(-3000)}`);
      if (Date.now() > deadline)
        throw new Error(`${this.name} not READY in time:\n${this.output.slice(-3000)}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  async kill(): Promise<void> {
    if (this.exited) return;
    this.child.kill('SIGKILL');
    await this.exit;
  }
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
      'dist/dashboard/ui/index.html',
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
    run(npm, ['rebuild', 'hiqlite', '--offline', '--no-audit', '--no-fund'], app);
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

  test('without a compiled SQLite extension (install scripts blocked, no compiler) a node uses the prebuilt copy; without either start() says how to fix it; a cache-only node starts', async () => {
    const pkgDir = join(app, 'node_modules', 'hiqlite');
    const built = join(pkgDir, 'native', 'build', 'hq_interrupt.so');
    const prebuilt = join(
      pkgDir,
      'native',
      'prebuilt',
      `${process.platform}-${process.arch}`,
      'hq_interrupt.so',
    );
    const shipsPrebuilt = process.platform === 'linux' && process.arch === 'x64';
    assert.equal(
      existsSync(prebuilt),
      shipsPrebuilt,
      'the tarball carries the prebuilt copy for Linux x86-64',
    );
    const [raft, api] = await freePorts(2);
    writeFileSync(
      join(app, 'no-ext.mjs'),
      `import { start } from 'hiqlite';
const [raft, api, dataDir, sqlite] = process.argv.slice(2);
try {
  const db = await start({
    nodeId: 1,
    nodes: [{ id: 1, addrRaft: '127.0.0.1:' + raft, addrApi: '127.0.0.1:' + api }],
    dataDir,
    secretRaft: 'raft-secret-0123456789',
    secretApi: 'api-secret-0123456789',
    sqlite: sqlite === 'true',
  });
  if (sqlite === 'true') {
    await db.execute('CREATE TABLE t (b BLOB)');
    const refused = await db.execute('INSERT INTO t VALUES (zeroblob(300000000))').catch((e) => e.code);
    console.log(JSON.stringify({ started: refused }));
  } else {
    await db.cache('c').put('k', 'v');
    console.log(JSON.stringify({ started: await db.cache('c').get('k') }));
  }
  await db.close();
} catch (e) {
  console.log(JSON.stringify({ code: e.code, message: e.message }));
}
`,
    );
    const outcome = (dir: string, sqlite: boolean) => {
      const r = run(
        process.execPath,
        ['no-ext.mjs', String(raft), String(api), join(tmp, dir), String(sqlite)],
        app,
      );
      return JSON.parse(
        r.stdout.split('\n').find((l) => l.startsWith('{"started"') || l.startsWith('{"code"')) ?? 'null',
      ) as {
        started?: string;
        code?: string;
        message?: string;
      } | null;
    };
    renameSync(built, `${built}.aside`);
    try {
      if (shipsPrebuilt) {
        // The value bound works through the prebuilt copy: the write is refused, typed.
        assert.deepEqual(outcome('prebuilt', true), { started: 'HQL_SQL' });
        renameSync(prebuilt, `${prebuilt}.aside`);
      }
      try {
        const refused = outcome('none', true);
        assert.equal(refused?.code, 'HQL_INVALID_CONFIG', JSON.stringify(refused));
        assert.match(refused?.message ?? '', /npm rebuild hiqlite/);
        assert.deepEqual(outcome('cache-only', false), { started: 'v' });
      } finally {
        if (shipsPrebuilt) renameSync(`${prebuilt}.aside`, prebuilt);
      }
    } finally {
      renameSync(`${built}.aside`, built);
    }
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

  test('the CLI as a user runs it: hash-password, a 3-node serve cluster, a proxy and a client through it, backup create/list/download, the dashboard from dist', async () => {
    const bin = join(app, 'node_modules', '.bin', 'hiqlite');
    const npx = process.platform === 'win32' ? 'npx.cmd' : 'npx';
    // hash-password reads the password from standard input when it is not a terminal.
    const password = 'dashboard-password-0123456789';
    const hash = run(npx, ['--no-install', 'hiqlite', 'hash-password'], app, `${password}\n`).stdout.trim();
    assert.match(hash, /^\$argon2id\$v=19\$m=\d+,t=\d+,p=\d+\$[A-Za-z0-9+/]+\$[A-Za-z0-9+/]+$/);
    const short = spawnSync(bin, ['hash-password'], { cwd: app, encoding: 'utf8', input: 'short\n' });
    assert.equal(short.status, 1, 'a short password is refused');
    assert.match(short.stderr, /at least 16 characters/);

    const ports = await freePorts(7);
    const [raft, api] = [ports.slice(0, 3), ports.slice(3, 6)] as [number[], number[]];
    const proxyPort = ports[6] as number;
    const secretApi = 'api-secret-0123456789';
    const cli = join(tmp, 'cli');
    mkdirSync(cli);
    const key = randomBytes(32).toString('base64');
    const config = (id: number) => join(cli, `node-${id}.toml`);
    for (const id of [1, 2, 3])
      writeFileSync(
        config(id),
        [
          '[hiqlite]',
          `node_id = ${id}`,
          `nodes = [${[1, 2, 3].map((n) => `"${n} 127.0.0.1:${raft[n - 1]} 127.0.0.1:${api[n - 1]}"`).join(', ')}]`,
          // Relative: resolved against the working directory (the app's).
          `data_dir = "cli/data/node-${id}"`,
          'secret_raft = "raft-secret-0123456789"',
          `secret_api = "${secretApi}"`,
          `enc_keys = ["k1/${key}"]`,
          'enc_key_active = "k1"',
          `password_dashboard = "${hash}"`,
          'insecure_cookie = true',
          '',
        ].join('\n'),
      );
    writeFileSync(
      join(cli, 'proxy.toml'),
      [
        '[hiqlite]',
        `proxy_addr_api = "127.0.0.1:${proxyPort}"`,
        `nodes = [${api.map((p) => `"127.0.0.1:${p}"`).join(', ')}]`,
        `secret_api = "${secretApi}"`,
        '',
      ].join('\n'),
    );
    const daemons: Daemon[] = [];
    try {
      for (const id of [1, 2, 3])
        daemons.push(Daemon.start(bin, ['serve', '--config', config(id)], app, `node ${id}`));
      for (const d of daemons) await d.ready();
      const proxy = Daemon.start(bin, ['proxy', '--config', join(cli, 'proxy.toml')], app, 'proxy');
      daemons.push(proxy);
      await proxy.ready();

      // A client that knows only the proxy: SQL and the cache group.
      writeFileSync(
        join(app, 'via-proxy.mjs'),
        `import { connect } from 'hiqlite';
const db = await connect({ nodes: ['127.0.0.1:${proxyPort}'], secretApi: '${secretApi}', requestTimeoutMs: 30000 });
try {
  await db.execute('CREATE TABLE notes (body TEXT)');
  await db.execute('INSERT INTO notes (body) VALUES (?)', ['through the proxy']);
  await db.cache('c').put('k', 'v');
  console.log(JSON.stringify({
    rows: await db.query('SELECT body FROM notes', [], { consistency: 'linearizable' }),
    cached: await db.cache('c').get('k', { consistency: 'linearizable' }),
  }));
} finally {
  await db.close();
}
`,
      );
      const out = run(process.execPath, ['via-proxy.mjs'], app).stdout.trim().split('\n').at(-1) as string;
      assert.deepEqual(JSON.parse(out), { rows: [{ body: 'through the proxy' }], cached: 'v' });

      // Backups: the leader takes one into its local folder; list it there; download into a folder.
      const created = run(
        npx,
        ['--no-install', 'hiqlite', 'backup', 'create', '--config', config(1)],
        app,
      ).stdout;
      const m = /^(backup_\S+\.hqbak) .* on node (\d+),/m.exec(created);
      assert.ok(m !== null, `backup create printed: ${created}`);
      const [, name, on] = m as unknown as [string, string, string];
      const listed = run(bin, ['backup', 'list', '--config', config(Number(on))], app).stdout;
      assert.ok(listed.startsWith(`${name} `), `backup list printed: ${listed}`);
      const downloaded = run(
        bin,
        ['backup', 'download', name, '--config', config(1), '--out', 'downloads/'],
        app,
      );
      const file = join(app, 'downloads', `${name.replace(/\.hqbak$/, '')}.db`);
      assert.ok(downloaded.stdout.includes('verified'), downloaded.stdout);
      assert.deepEqual(readdirSync(join(app, 'downloads')), [`${name.replace(/\.hqbak$/, '')}.db`]);
      const sqlite = spawnSync(
        process.execPath,
        [
          '-e',
          `const D = require('better-sqlite3'); const db = new D(process.argv[1], { readonly: true }); console.log(JSON.stringify(db.prepare('SELECT body FROM notes').all()));`,
          file,
        ],
        { cwd: app, encoding: 'utf8' },
      );
      assert.deepEqual(JSON.parse(sqlite.stdout), [{ body: 'through the proxy' }], sqlite.stderr);

      // The dashboard, from the files the build put in dist/.
      const base = `http://127.0.0.1:${api[1]}`;
      const get = (path: string, init: RequestInit = {}) =>
        fetch(`${base}${path}`, { redirect: 'manual', ...init, signal: AbortSignal.timeout(30_000) });
      const page = await get('/dashboard/');
      assert.equal(page.status, 200);
      assert.equal(page.headers.get('content-type'), 'text/html; charset=utf-8');
      const csp = page.headers.get('content-security-policy') ?? '';
      assert.match(csp, /default-src 'none'/);
      assert.match(csp, /script-src 'self'/);
      const html = await page.text();
      const assets = [...html.matchAll(/(?:src|href)="(\/dashboard\/[^"]+)"/g)].map((a) => a[1] as string);
      const types = new Map<string, string>([
        ['js', 'text/javascript; charset=utf-8'],
        ['css', 'text/css; charset=utf-8'],
        ['svg', 'image/svg+xml'],
      ]);
      for (const ext of types.keys())
        assert.ok(
          assets.some((a) => a.endsWith(`.${ext}`)),
          `the page links no .${ext}: ${html}`,
        );
      for (const a of assets) {
        const r = await get(a);
        assert.equal(r.status, 200, a);
        assert.equal(r.headers.get('content-type'), types.get(a.slice(a.lastIndexOf('.') + 1)), a);
        assert.match(r.headers.get('content-security-policy') ?? '', /default-src 'none'/, a);
        assert.ok((await r.arrayBuffer()).byteLength > 100, `${a} is empty`);
      }
      const login = (pw: string) =>
        get('/dashboard/api/login', {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ password: pw }),
        });
      assert.equal((await login('not-the-password-0123')).status, 401);
      const ok = await login(password);
      assert.equal(ok.status, 200);
      const cookie = ok.headers.get('set-cookie') ?? '';
      assert.match(
        cookie,
        /^hiqlite-session=[^;]+;.*HttpOnly/i,
        'insecure_cookie: no __Host- prefix over HTTP',
      );
      assert.doesNotMatch(cookie, /Secure/);
      const { csrfToken } = ((await ok.json()) as { value: { csrfToken: string } }).value;
      const session = cookie.split(';')[0] as string;
      const cluster = (await (
        await get('/dashboard/api/cluster', { headers: { cookie: session } })
      ).json()) as {
        value: { members: Array<{ id: number; up: boolean }> };
      };
      assert.deepEqual(
        cluster.value.members.map((x) => [x.id, x.up]),
        [
          [1, true],
          [2, true],
          [3, true],
        ],
      );
      const q = await get('/dashboard/api/query', {
        method: 'POST',
        headers: { cookie: session, 'x-csrf-token': csrfToken, 'content-type': 'application/json' },
        body: JSON.stringify({ sql: 'SELECT body FROM notes', consistency: 'linearizable' }),
      });
      const qBody = await q.text();
      assert.equal(q.status, 200, qBody);
      assert.match(qBody, /through the proxy/);
    } finally {
      for (const d of daemons) await d.kill();
    }
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
