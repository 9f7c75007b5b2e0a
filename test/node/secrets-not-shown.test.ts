/**
 * A node or client printed (console.log, util.inspect, a logger's context) or serialized
 * (JSON.stringify) shows what it is, never the secrets it holds (found from outside:
 * `console.log(db)` printed secret_api and secret_raft, for `start()` and `connect()` alike).
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { inspect } from 'node:util';
import {
  type OneNodeClientKind,
  oneNodeConfig,
  startOneNodeAs,
  TEST_SECRETS,
} from '../support/one-node-config.js';

const roots: string[] = [];
after(() => {
  for (const r of roots) rmSync(r, { recursive: true, force: true });
});

describe('no secret in what a node or client shows of itself', () => {
  for (const who of [
    'embedded worker',
    'embedded main',
    'remote',
  ] as const satisfies readonly OneNodeClientKind[])
    test(`${who}: inspect and JSON.stringify name it without its secrets`, async () => {
      const root = mkdtempSync(join(tmpdir(), 'hq-secrets-'));
      roots.push(root);
      const cfg = await oneNodeConfig(root);
      const { db, close } = await startOneNodeAs(who, cfg);
      try {
        await db.execute('CREATE TABLE t (x)');
        const shown = [
          inspect(db, { depth: Number.POSITIVE_INFINITY, showHidden: true }),
          inspect({ context: { db } }, { depth: 20 }),
          JSON.stringify(db),
          JSON.stringify({ db }),
          // What walks own properties (a spread, Object.keys, a logger's serializer).
          inspect({ ...db }, { depth: 20 }),
          inspect(Object.fromEntries(Object.keys(db).map((k) => [k, (db as never)[k]])), { depth: 20 }),
        ];
        for (const text of shown) {
          assert.ok(!text.includes(TEST_SECRETS.secretApi), `secret_api shown: ${text.slice(0, 300)}`);
          assert.ok(!text.includes(TEST_SECRETS.secretRaft), `secret_raft shown: ${text.slice(0, 300)}`);
        }
        // What it is, still: the node's id, or the addresses a client was given.
        if (who === 'remote')
          assert.match(shown[0] ?? '', /RemoteClient \{ nodes: \[ '127\.0\.0\.1:\d+' \] \}/);
        else assert.match(shown[0] ?? '', /Node \{ nodeId: 1, thread: '(worker|main)' \}/);
      } finally {
        await close();
      }
    });
});
