/**
 * The long fault runner runs the nodes as users run them: the package's sources compiled by tsc
 * (tsconfig.build.json, as `npm run build` does) into a temporary folder, started with plain
 * `node` — no loader. Under tsx every start of a node transpiles the sources again, which on a
 * loaded 2-core machine took a restarted node from about 1 s to 3–10 s before it served, and the
 * liveness checks measured the loader instead of the product.
 */
import { spawnSync } from 'node:child_process';
import {
  cpSync,
  existsSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

const REPO = resolve(import.meta.dirname, '../..');

export interface CompiledProduct {
  /** The compiled `hiqlite` CLI (`serve` is what the fault suite starts). */
  readonly cli: string;
  /** Removes the temporary folder. */
  remove(): void;
}

/** Compiles src/ into a temporary folder; throws with tsc's exit code when the build fails. */
export function compileProduct(): CompiledProduct {
  const out = mkdtempSync(join(tmpdir(), 'hiqlite-faults-js-'));
  const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');
  const dist = join(out, 'dist');
  const r = spawnSync(process.execPath, [tsc, '-p', join(REPO, 'tsconfig.build.json'), '--outDir', dist], {
    stdio: 'inherit',
  });
  if (r.status !== 0) {
    rmSync(out, { recursive: true, force: true });
    throw new Error(`tsc failed (exit ${r.status ?? r.signal})`);
  }
  return laidOut(out);
}

/** `out/dist` holds the compiled sources: adds what the package's layout gives them. */
function laidOut(out: string): CompiledProduct {
  const dist = join(out, 'dist');
  // The package's layout: dependencies resolve from the repository's node_modules, and the CLI
  // reads its version from package.json two levels above dist/server.
  symlinkSync(join(REPO, 'node_modules'), join(out, 'node_modules'), 'dir');
  // The SQLite extension a node with SQLite needs, where the package keeps it (native/build).
  symlinkSync(join(REPO, 'native'), join(out, 'native'), 'dir');
  const { version } = JSON.parse(readFileSync(join(REPO, 'package.json'), 'utf8')) as { version: string };
  writeFileSync(join(out, 'package.json'), JSON.stringify({ type: 'module', version }));
  return {
    cli: join(dist, 'server', 'cli.js'),
    remove: () => rmSync(out, { recursive: true, force: true }),
  };
}

/** The newest modification time of any file under `dir` (bounded by the tree's size). */
function newestMtimeMs(dir: string): number {
  let newest = 0;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    newest = Math.max(newest, e.isDirectory() ? newestMtimeMs(p) : statSync(p).mtimeMs);
  }
  return newest;
}

/**
 * The package's own build (`dist/`, made by `npm ci`/`npm run build`) when it is newer than every
 * source file, else a fresh compile into a temporary folder: the short fault suite in `npm test`
 * runs the nodes compiled without paying for a build on CI, and never runs a stale build.
 */
export function builtOrCompiledProduct(): CompiledProduct {
  const cli = join(REPO, 'dist', 'server', 'cli.js');
  if (existsSync(cli) && statSync(cli).mtimeMs >= newestMtimeMs(join(REPO, 'src'))) {
    // A copy: test/package rebuilds dist/ (npm pack) while other test files run.
    const out = mkdtempSync(join(tmpdir(), 'hiqlite-faults-js-'));
    cpSync(join(REPO, 'dist'), join(out, 'dist'), { recursive: true });
    return laidOut(out);
  }
  return compileProduct();
}
