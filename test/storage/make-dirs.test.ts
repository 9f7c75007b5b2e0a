/**
 * makeDirsSync (src/storage/make-dirs.ts): a folder and its missing parents, one level
 * at a time, so a path that cannot be made fails at once (Node's recursive mkdir loops forever on
 * a path under /proc), with the errno the callers turn into words (unusableDirReason).
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { makeDirsSync } from '../../src/storage/make-dirs.js';

const code = (c: string) => (e: unknown) => (e as NodeJS.ErrnoException).code === c;

describe('makeDirsSync', () => {
  const root = mkdtempSync(join(tmpdir(), 'hq-make-dirs-'));
  after(() => rmSync(root, { recursive: true, force: true }));

  test('makes every missing level with the mode, and is a no-op on a folder that exists', () => {
    const deep = join(root, 'a', 'b', 'c');
    makeDirsSync(deep, 0o700);
    for (const p of [join(root, 'a'), join(root, 'a', 'b'), deep]) {
      assert.ok(statSync(p).isDirectory());
      assert.equal(statSync(p).mode & 0o777, 0o700);
    }
    makeDirsSync(deep, 0o700);
    makeDirsSync(root, 0o700);
  });

  test('a file in the path is ENOTDIR, the path itself a file EEXIST', () => {
    const file = join(root, 'file');
    writeFileSync(file, 'x');
    assert.throws(() => makeDirsSync(join(file, 'sub'), 0o700), code('ENOTDIR'));
    assert.throws(() => makeDirsSync(file, 0o700), code('EEXIST'));
  });

  test('a level that cannot be made (under /proc) fails with ENOENT instead of looping', () => {
    assert.throws(() => makeDirsSync('/proc/hiqlite-make-dirs/x/y', 0o700), code('ENOENT'));
  });
});
