/**
 * A data directory belongs to the node that wrote it (src/node/node-id-file.ts): another node id
 * on it is refused before anything of its state is read, on either thread and for a cache-only
 * node on disk; a directory of an earlier version (no `node_id`) is adopted.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { start } from '../../src/index.js';
import type { NodeConfig } from '../../src/node/config/config.js';
import { DATA_FORMAT } from '../../src/node/node-id-file.js';
import { freePorts } from '../support/free-ports.js';
import { oneNodeConfig } from '../support/one-node-config.js';

const root = mkdtempSync(join(tmpdir(), 'hq-node-id-'));
let n = 0;

/** `cfg` as node `id` of a cluster of node 1 and it, on the same data_dir. */
async function as(cfg: NodeConfig, id: number): Promise<NodeConfig> {
  const [raft, api] = await freePorts(2);
  const other = { id, addrRaft: `127.0.0.1:${raft}`, addrApi: `127.0.0.1:${api}` };
  return { ...cfg, nodeId: id, nodes: [cfg.nodes[0]!, other] };
}

async function refused(cfg: NodeConfig, thread: 'main' | 'worker', pattern: RegExp): Promise<void> {
  await assert.rejects(start(cfg, { thread, joinTimeoutMs: 5_000 }), (e: Error & { code?: string }) => {
    assert.equal(e.code, 'HQL_INVALID_CONFIG', e.message);
    assert.match(e.message, pattern);
    return true;
  });
}

describe('node_id of a data directory', () => {
  after(() => rmSync(root, { recursive: true, force: true }));

  test('another node id on a node’s data_dir is refused on either thread; the node itself starts again', async () => {
    const cfg = await oneNodeConfig(join(root, `d${n++}`));
    const node = await start(cfg, { thread: 'main' });
    await node.execute('CREATE TABLE t (x)');
    await node.close();
    const dataDir = cfg.dataDir as string;
    assert.equal(readFileSync(join(dataDir, 'node_id'), 'utf8'), `1\ndata-format ${DATA_FORMAT}\n`);
    for (const thread of ['main', 'worker'] as const) {
      await refused(
        await as(cfg, 2),
        thread,
        /holds the state of node 1 .* this is node 2: give each node its own data_dir/,
      );
    }
    // Refused before it touched anything: node 1 starts on it as before, its table there.
    const again = await start(cfg, { thread: 'worker' });
    assert.deepEqual(await again.query("SELECT name FROM sqlite_master WHERE name = 't'"), [{ name: 't' }]);
    await again.close();
  });

  test('a data_dir of an earlier version (no node_id file) is adopted; a damaged file is refused', async () => {
    const cfg = await oneNodeConfig(join(root, `d${n++}`));
    const node = await start(cfg, { thread: 'main' });
    await node.close();
    const file = join(cfg.dataDir as string, 'node_id');
    unlinkSync(file);
    const adopted = await start(cfg, { thread: 'main' });
    await adopted.close();
    assert.equal(readFileSync(file, 'utf8'), `1\ndata-format ${DATA_FORMAT}\n`);
    writeFileSync(file, 'node-one');
    await refused(cfg, 'main', /node_id does not hold a node id \(it holds "node-one"\)/);
  });

  test('the data format: a bare id (an earlier build) is adopted and marked; a newer format is refused untouched', async () => {
    // Found by an outside probe: a directory written by this build, started with the build
    // before it, skipped the new log entries as malformed, and its replica diverged in silence.
    const cfg = await oneNodeConfig(join(root, `d${n++}`));
    const node = await start(cfg, { thread: 'main' });
    await node.execute('CREATE TABLE t (x)');
    await node.close();
    const file = join(cfg.dataDir as string, 'node_id');
    // As the build before data formats wrote it, and as the builds of format 2 (sessions without
    // their protection window) did: both marked with this build's format.
    for (const earlier of ['1\n', '1\ndata-format 2\n']) {
      writeFileSync(file, earlier);
      const upgraded = await start(cfg, { thread: 'main' });
      await upgraded.close();
      assert.equal(readFileSync(file, 'utf8'), `1\ndata-format ${DATA_FORMAT}\n`);
    }
    const newer = `1\ndata-format ${DATA_FORMAT + 1}\n`;
    writeFileSync(file, newer);
    for (const thread of ['main', 'worker'] as const) {
      await refused(
        cfg,
        thread,
        new RegExp(
          `written by a newer hiqlite \\(data format ${DATA_FORMAT + 1}; this build reads up to ${DATA_FORMAT}\\).*cannot be downgraded`,
        ),
      );
    }
    assert.equal(readFileSync(file, 'utf8'), newer, 'the refused start changed nothing');
    // What the build before data formats checks: a bare id only, so it refuses this file.
    assert.doesNotMatch(readFileSync(file, 'utf8').trim(), /^[1-9][0-9]{0,15}$/);
  });

  test('a cache-only node on disk checks it too', async () => {
    const cfg = await oneNodeConfig(join(root, `d${n++}`), { sqlite: false, cacheStorageDisk: true });
    const node = await start(cfg, { thread: 'main' });
    await node.close();
    await refused(await as(cfg, 3), 'main', /holds the state of node 1 .* this is node 3/);
  });
});
