/**
 * The reference docs are true to the code (issue 10): every error code a user can see is in
 * docs/ERRORS.md and every code there exists; every config key of the node is in
 * docs/CONFIGURATION.md under its TOML name.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { test } from 'node:test';

const root = resolve(import.meta.dirname, '../..');
const read = (p: string) => readFileSync(resolve(root, p), 'utf8');

test('docs/ERRORS.md documents exactly the ErrorCode union', () => {
  const source = read('src/lib/errors.ts');
  // The union ends at the first line that ends with ';' (comments inside may hold one).
  const start = source.indexOf('export type ErrorCode');
  const union = source.slice(start, source.indexOf(';\n', start));
  const inCode = new Set([...union.matchAll(/'(HQL_[A-Z_]+)'/g)].map((m) => m[1] as string));
  const docs = read('docs/ERRORS.md');
  const inDocs = new Set([...docs.matchAll(/^\|\s*`(HQL_[A-Z_]+)`/gm)].map((m) => m[1] as string));
  assert.ok(inCode.size > 20, 'the union was found');
  assert.deepEqual(
    [...inCode].filter((c) => !inDocs.has(c)),
    [],
    'codes missing from docs/ERRORS.md',
  );
  assert.deepEqual(
    [...inDocs].filter((c) => !inCode.has(c)),
    [],
    'documented codes that do not exist',
  );
});

test('docs/CONFIGURATION.md documents every config key', () => {
  const keys = [...read('src/node/config/config-keys.ts').matchAll(/toml: '([a-z0-9_]+)'/g)].map(
    (m) => m[1] as string,
  );
  assert.ok(keys.length > 20, 'the keys were found');
  const docs = read('docs/CONFIGURATION.md');
  assert.deepEqual(
    keys.filter((k) => !docs.includes(`\`${k}\``)),
    [],
    'keys missing from docs/CONFIGURATION.md',
  );
});
