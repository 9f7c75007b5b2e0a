/**
 * An application whose node is applying a write that runs for hours calls process.exit(0):
 * worker-thread.test.ts checks that the process ends (Node waits for worker threads, and a
 * thread inside a SQLite statement only returns once the statement is interrupted).
 *
 *   node --import tsx test/node/wedged-exit-app.ts <worker|main>
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { start } from '../../src/index.js';
import { freePorts } from '../support/free-ports.js';

const thread = process.argv[2] === 'main' ? 'main' : 'worker';
const root = mkdtempSync(join(tmpdir(), 'hq-wedged-exit-'));
const [raft, api] = (await freePorts(2)) as [number, number];
const node = await start(
  {
    nodeId: 1,
    nodes: [{ id: 1, addrRaft: `127.0.0.1:${raft}`, addrApi: `127.0.0.1:${api}` }],
    dataDir: join(root, 'data'),
    secretRaft: 'raft-secret-for-tests-0123456789',
    secretApi: 'api-secret-for-tests-0123456789',
    writeRecursionRowsMax: 1_000_000_000_000,
  },
  { thread },
);
await node.execute('CREATE TABLE t (v INTEGER)');
// Bounded by its LIMIT (allowed with write_recursion_rows_max raised), but far longer than any test.
node
  .execute(
    'INSERT INTO t (v) SELECT count(*) FROM (WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM c LIMIT 100000000000) SELECT x FROM c)',
  )
  .catch(() => {});
setTimeout(() => {
  rmSync(root, { recursive: true, force: true });
  process.stdout.write('EXITING\n');
  process.exit(0);
}, 1000);
