/**
 * A remote client waiting for a lock whose node goes away queues again through another node and
 * withdraws its earlier place: when the holder releases, the lock goes to it, not to the waiter
 * its gone node left in the lock's queue (replicated state nobody was behind), which held it for
 * the whole lease it had asked for (found from outside: a 20 s lease, the live waiter got the
 * lock 20 s after the release).
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { connect, start } from '../../src/index.js';
import { loopbackMembers } from '../support/free-ports.js';
import { TEST_SECRETS } from '../support/one-node-config.js';
import { within } from '../support/within.js';

test("a lock waiter whose node shut down gets the lock at the release, not after its gone place's lease", async () => {
  const root = mkdtempSync(join(tmpdir(), 'hq-lock-node-gone-'));
  const members = await loopbackMembers(3);
  const nodes = await Promise.all(
    members.map((m) =>
      start({ nodeId: m.id, nodes: members, dataDir: join(root, `node-${m.id}`), ...TEST_SECRETS }),
    ),
  );
  const [n1, n2, n3] = nodes as [(typeof nodes)[0], (typeof nodes)[0], (typeof nodes)[0]];
  // Node 3 first: the waiter's first attempt waits there.
  const client = await connect({
    nodes: [members[2]!.addrApi, members[0]!.addrApi, members[1]!.addrApi],
    secretApi: TEST_SECRETS.secretApi,
  });
  try {
    const held = await n1.lock('K', { leaseMs: 60_000 });
    const waiting = client.lock('K', { leaseMs: 60_000 });
    let got = false;
    void waiting.then(() => {
      got = true;
    });
    await new Promise((r) => setTimeout(r, 1_000));
    assert.equal(got, false, 'queued behind the holder');
    await n3.close();
    // The client notices, and queues again through node 1.
    await new Promise((r) => setTimeout(r, 2_000));
    await held.release();
    const lock = await within(waiting, 15_000, 'the live waiter to get the lock after the release');
    assert.ok(lock.token > held.token, `a later fencing token (${lock.token} > ${held.token})`);
    await lock.release();
    // And the lock is free: nobody else holds it.
    const again = await within(n2.tryLock('K', { leaseMs: 5_000 }), 15_000, 'tryLock');
    assert.notEqual(again, null, 'free after the release');
    await again?.release();
  } finally {
    await client.close();
    await Promise.all([n1.close(), n2.close()]);
    rmSync(root, { recursive: true, force: true });
  }
});
