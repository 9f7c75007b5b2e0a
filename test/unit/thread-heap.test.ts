/**
 * The old generation limit of the threads hiqlite starts (`threadOldGenerationMaxMb`, 0 = auto):
 * 2,000 MB, or the starting thread's own limit when that is smaller, so an application run with
 * `--max-old-space-size` (or a small machine's default) is followed, never raised.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { resolve } from 'node:path';
import { test } from 'node:test';
import { pathToFileURL } from 'node:url';
import { workerResourceLimits } from '../../src/sm/sql/worker-client.js';

const MODULE = pathToFileURL(resolve(import.meta.dirname, '../../src/sm/sql/worker-client.ts')).href;

function autoIn(flags: string[]): number {
  const out = execFileSync(
    process.execPath,
    [
      ...flags,
      '--import',
      'tsx',
      '--input-type=module',
      '-e',
      `const m = await import(${JSON.stringify(MODULE)}); console.log(m.workerResourceLimits({ youngGenerationMb: 4, oldGenerationMaxMb: 0 }).maxOldGenerationSizeMb);`,
    ],
    { encoding: 'utf8', timeout: 30_000 },
  );
  return Number(out.trim());
}

test('0 follows an application that sets a smaller heap, and is at most 2,000 MB', () => {
  const small = autoIn(['--max-old-space-size=300']);
  assert.ok(small >= 300 && small < 400, `with --max-old-space-size=300: ${small}`);
  const large = autoIn(['--max-old-space-size=8000']);
  assert.equal(large, 2000);
});

test('an explicit limit is used as it is', () => {
  assert.deepEqual(workerResourceLimits({ youngGenerationMb: 8, oldGenerationMaxMb: 512 }), {
    maxYoungGenerationSizeMb: 8,
    maxOldGenerationSizeMb: 512,
  });
});
