/**
 * A disk that fills up, for one node's data directory: test/support/enospc/enospc-shim.c, an
 * LD_PRELOAD library built here with the C compiler (`cc`, which .ci/run's g++ brings), makes
 * every write, sync and allocation of a file under the directory fail with ENOSPC while a flag
 * file exists. The process is real and unchanged: SQLite, libuv and Node see what a full disk
 * shows them.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const SOURCE = join(dirname(fileURLToPath(import.meta.url)), 'enospc', 'enospc-shim.c');
let built: string | null = null;

/** The shim, built once per test process into a temporary folder (removed at exit). */
export function enospcShim(): string {
  if (built !== null) return built;
  const dir = mkdtempSync(join(tmpdir(), 'hql-enospc-'));
  process.once('exit', () => rmSync(dir, { recursive: true, force: true }));
  const out = join(dir, 'enospc.so');
  execFileSync(process.env.CC ?? 'cc', ['-O2', '-fPIC', '-shared', '-o', out, SOURCE, '-ldl'], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  built = out;
  return out;
}

/** The environment of a process whose disk under `dirs` is full while `flagFile` exists. */
export function enospcEnv(dirs: string | readonly string[], flagFile: string): Record<string, string> {
  const list = typeof dirs === 'string' ? [dirs] : dirs;
  return { LD_PRELOAD: enospcShim(), ENOSPC_SHIM_DIR: list.join(':'), ENOSPC_SHIM_FLAG: flagFile };
}

/** The disk is full from now on (for the processes started with enospcEnv and this flag). */
export function fillDisk(flagFile: string): void {
  writeFileSync(flagFile, '');
}

/** Space again. */
export function freeDisk(flagFile: string): void {
  rmSync(flagFile, { force: true });
}
