#!/usr/bin/env node
/**
 * Builds hiqlite's SQLite extension (native/interrupt: query deadlines, and the bound on a
 * write's values) at install time, into native/build. Never fails the install: a cache-only node
 * works without it, and a node with SQLite then uses the prebuilt copy the package ships for its
 * platform, if any, or refuses to start with the fix in its message (docs/ARCHITECTURE.md,
 * "Reads and writes that never end").
 *
 * `--prebuilt` (run by `npm pack`): builds the portable copy the package ships, into
 * native/prebuilt/<platform>-<arch>, for installs where no C compiler is found (a slim container
 * image). Linux x86-64 only: it binds glibc symbols to their oldest versions (hq_interrupt.c).
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const source = join(root, 'native', 'interrupt', 'hq_interrupt.c');
const prebuilt = process.argv.includes('--prebuilt');

function main() {
  if (process.platform === 'win32') {
    return 'not built on Windows';
  }
  if (prebuilt && !(process.platform === 'linux' && process.arch === 'x64')) {
    return `no prebuilt copy is made on ${process.platform}-${process.arch}`;
  }
  let include;
  try {
    const require = createRequire(import.meta.url);
    include = join(dirname(require.resolve('better-sqlite3/package.json')), 'deps', 'sqlite3');
  } catch {
    return 'better-sqlite3 not found';
  }
  const out = prebuilt
    ? join(root, 'native', 'prebuilt', `${process.platform}-${process.arch}`)
    : join(root, 'native', 'build');
  mkdirSync(out, { recursive: true });
  const darwin = process.platform === 'darwin';
  const file = join(out, darwin ? 'hq_interrupt.dylib' : 'hq_interrupt.so');
  const cc = process.env.CC || 'cc';
  const args = ['-O2', '-fPIC', darwin ? '-dynamiclib' : '-shared', '-I', include];
  if (prebuilt) args.push('-DHQ_PORTABLE', '-Wl,--no-as-needed');
  args.push('-o', file, source);
  // The portable copy names libpthread and libdl itself: on glibc before 2.34 the symbols live there.
  if (!darwin) args.push(...(prebuilt ? ['-l:libpthread.so.0', '-l:libdl.so.2'] : ['-lpthread', '-ldl']));
  try {
    execFileSync(cc, args, { stdio: ['ignore', 'ignore', 'pipe'] });
  } catch (e) {
    return `${cc} failed: ${
      String(e.stderr ?? e.message)
        .trim()
        .split('\n')[0]
    }`;
  }
  return null;
}

const failure = main();
if (failure !== null) {
  console.warn(
    prebuilt
      ? `hiqlite: the package carries no prebuilt SQLite extension (${failure})`
      : `hiqlite: its SQLite extension was not built (${failure}): a node with SQLite uses the prebuilt copy for its platform if the package has one, else it will not start (a cache-only node will). Install a C compiler and run \`npm rebuild hiqlite\`.`,
  );
}
