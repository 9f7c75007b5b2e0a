/**
 * `npm run bench`: builds the benchmark and the package's sources with tsc into a temporary
 * folder and runs the suite from there, as compiled JavaScript without a loader: what users run
 * (the npm package ships tsc output). Arguments are passed on to bench/run.ts, or with a first
 * argument `--suite cache` to bench/cache-run.ts (`npm run bench:cache`), `--suite backup` to
 * bench/backup.ts (`npm run bench:backup`), `--suite crossing` to bench/crossing.ts (`npm run
 * bench:crossing`). `npm run
 * bench:tsx` runs the TypeScript sources through tsx instead (no build step; tsx adds memory and
 * `__name` calls around closures, see docs/BENCHMARKS.md).
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const args = process.argv.slice(2);
const suite = args[0] === '--suite' ? args[1] : 'main';
if (suite !== 'main' && suite !== 'cache' && suite !== 'backup' && suite !== 'crossing') {
  process.stderr.write(`unknown --suite ${suite} (main, cache, backup or crossing)\n`);
  process.exit(2);
}
const script = { main: 'run.js', cache: 'cache-run.js', backup: 'backup.js', crossing: 'crossing.js' }[suite];
const passed = args[0] === '--suite' ? args.slice(2) : args;
if (passed.includes('--help') || passed.includes('-h')) {
  // Answered before the build (about a minute): the suites' options (docs/BENCHMARKS.md).
  process.stdout.write(`npm run bench [-- options]          the SQL suite (bench/run.ts)
npm run bench:cache [-- options]    the cache group suite (bench/cache-run.ts)
npm run bench:backup [-- --mib N]   backup and restore of an N MiB database (bench/backup.ts)
npm run bench:crossing [-- --seconds S]  the node's own thread against the application's, one node

Options of the SQL and cache suites:
  --list              the benchmark ids, then exit
  --only ID[,ID…]     run only these
  --seconds S         measure each for S seconds     --quick   short runs (a smoke test)
  --json FILE         write the figures as JSON      --profile-dir DIR   where --profile writes
  --wait-load L       wait (at most --wait-max-s, default 600) for the load average to fall below L
  --main-first        run the cluster with node 1's node on the application's thread first
SQL suite: --profile (CPU profiles of a run). Cache suite: --storage disk|memory, --profile ID,
  --notify-rate N (notifications per second, default 100).
Every run prints the machine, the configuration and the durability mode (docs/BENCHMARKS.md).
`);
  process.exit(0);
}
const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const out = mkdtempSync(join(tmpdir(), 'hiqlite-bench-js-'));
let code = 1;
try {
  const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');
  // The worker script is loaded by URL, not imported: it must be listed.
  const entries = [
    'bench/run.ts',
    'bench/cache-run.ts',
    'bench/backup.ts',
    'bench/crossing.ts',
    'src/backup/copy-worker.ts',
    'bench/node-child.ts',
    'bench/serve-hook.ts',
    'src/server/cli.ts',
    'src/sm/sql/worker.ts',
    'src/sm/sql/read-worker.ts',
    'src/client/node-worker.ts',
  ];
  const build = spawnSync(
    process.execPath,
    [
      tsc,
      ...entries.map((e) => join(root, e)),
      ...['--outDir', out, '--rootDir', root, '--module', 'nodenext', '--moduleResolution', 'nodenext'],
      ...[
        '--target',
        'es2022',
        '--lib',
        'es2023',
        '--strict',
        '--types',
        'node',
        '--skipLibCheck',
        '--esModuleInterop',
      ],
    ],
    { stdio: 'inherit' },
  );
  if (build.status !== 0) throw new Error(`tsc failed (exit ${build.status})`);
  symlinkSync(join(root, 'node_modules'), join(out, 'node_modules'), 'dir');
  // The SQLite extension a node with SQLite needs, where the package keeps it (native/build).
  symlinkSync(join(root, 'native'), join(out, 'native'), 'dir');
  // src/server/cli.ts reads the version from package.json two levels up.
  const { version } = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));
  writeFileSync(join(out, 'package.json'), JSON.stringify({ type: 'module', version }));
  // The backup suite measures memory from a clean heap (global.gc before each phase).
  const nodeArgs = suite === 'backup' ? ['--expose-gc'] : [];
  const run = spawnSync(process.execPath, [...nodeArgs, join(out, 'bench', script), ...passed], {
    stdio: 'inherit',
    env: { ...process.env, HQL_BENCH_REPO: root },
  });
  code = run.status ?? 1;
} catch (e) {
  process.stderr.write(`${e instanceof Error ? e.message : String(e)}\n`);
} finally {
  rmSync(out, { recursive: true, force: true });
}
process.exit(code);
