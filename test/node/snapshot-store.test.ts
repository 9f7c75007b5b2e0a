/**
 * One conformance suite for the GroupSnapshotStore seam (src/node/seams.ts), run against the
 * file store the node ships (src/node/snapshot-store.ts) and the simulator's (test/sim/disk.ts),
 * so that the simulator's store cannot drift from what RaftGroup gets in production.
 */
import assert from 'node:assert/strict';
import { access, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { Prng } from '../../src/lib/prng.js';
import type { GroupSnapshotStore } from '../../src/node/seams.js';
import { SnapshotStore } from '../../src/node/snapshot-store.js';
import type { LogIndex, Membership, NodeId, SnapshotMeta, Term } from '../../src/raft/types.js';
import { SimDisk, SimSnapshotStore } from '../sim/disk.js';
import { EventQueue } from '../sim/event-queue.js';
import { emptySnapshot } from '../sim/kv.js';

const membership: Membership = { voters: [1 as NodeId, 2 as NodeId], learners: [3 as NodeId] };

function meta(index: number, term = 1): SnapshotMeta {
  return { index: index as LogIndex, term: term as Term, membership };
}

interface Fixture {
  readonly store: GroupSnapshotStore;
  /** Writes a snapshot's data at `path`, as a state machine or a receiving stream does. */
  write(path: string, m: SnapshotMeta): Promise<void>;
  exists(path: string): Promise<boolean>;
  close(): Promise<void>;
}

const implementations: Record<string, () => Promise<Fixture>> = {
  'file store': async () => {
    const dir = await mkdtemp(join(tmpdir(), 'hql-snapstore-'));
    const store = await SnapshotStore.open(dir);
    return {
      store,
      write: (path, m) => writeFile(path, `snapshot ${m.index}/${m.term}`),
      exists: (path) =>
        access(path).then(
          () => true,
          () => false,
        ),
      close: () => rm(dir, { recursive: true, force: true }),
    };
  },
  'simulated store': async () => {
    const queue = new EventQueue(1_000);
    const timing = { diskLatencyUsMin: 50, diskLatencyUsMax: 500, slowDiskRate: 0, slowDiskUsMax: 0 };
    const disk = new SimDisk(1 as NodeId, emptySnapshot(membership), queue, new Prng(1), timing);
    const inner = new SimSnapshotStore(disk, { dead: false, whenRunning: (_kind, fn) => fn() });
    // The simulated disk completes a write when its event runs: run the agenda on commit.
    const store: GroupSnapshotStore = {
      latest: () => inner.latest(),
      tempPath: () => inner.tempPath(),
      discard: (path) => inner.discard(path),
      commit: (path, m) => {
        const done = inner.commit(path, m);
        for (let ev = queue.pop(); ev !== null; ev = queue.pop()) ev.run();
        return done;
      },
      check: (stored) => inner.check(stored),
      drop: (stored) => {
        const done = inner.drop(stored);
        for (let ev = queue.pop(); ev !== null; ev = queue.pop()) ev.run();
        return done;
      },
    };
    return {
      store,
      write: async (path, m) => {
        disk.files.set(path, { ...emptySnapshot(membership), meta: m });
      },
      exists: async (path) => disk.files.has(path),
      close: async () => {},
    };
  },
};

for (const [name, make] of Object.entries(implementations)) {
  describe(`snapshot store conformance: ${name}`, () => {
    test('holds nothing at first; temporary paths are distinct', async () => {
      const f = await make();
      try {
        assert.equal(f.store.latest(), null);
        assert.notEqual(f.store.tempPath(), f.store.tempPath());
      } finally {
        await f.close();
      }
    });

    test('a committed snapshot is the latest, with its metadata, and its data stays readable', async () => {
      const f = await make();
      try {
        const path = f.store.tempPath();
        await f.write(path, meta(7, 2));
        const stored = await f.store.commit(path, meta(7, 2));
        assert.deepEqual(stored.meta, meta(7, 2));
        assert.deepEqual(f.store.latest(), stored);
        assert.equal(await f.exists(stored.path), true);
      } finally {
        await f.close();
      }
    });

    test('keeps the newest two: a third commit drops the oldest data', async () => {
      const f = await make();
      try {
        const stored = [];
        for (const i of [3, 5, 9]) {
          const path = f.store.tempPath();
          await f.write(path, meta(i));
          stored.push(await f.store.commit(path, meta(i)));
        }
        assert.equal(f.store.latest()?.meta.index, 9);
        assert.equal(await f.exists(stored[0]!.path), false);
        assert.equal(await f.exists(stored[1]!.path), true);
      } finally {
        await f.close();
      }
    });

    test('discard deletes a snapshot that was never committed, and is quiet when it is gone', async () => {
      const f = await make();
      try {
        const path = f.store.tempPath();
        await f.write(path, meta(4));
        await f.store.discard(path);
        assert.equal(await f.exists(path), false);
        await f.store.discard(path);
        assert.equal(f.store.latest(), null);
      } finally {
        await f.close();
      }
    });
  });
}

test("SnapshotStore.open removes what interrupted writes left: the temp file and SQLite's files beside its .partial", async () => {
  // Found from outside: `incoming-<pid>-<n>.tmp.partial` and `.partial-journal` stayed after any
  // number of restarts (one was 5.2 MB): only names ending in `.tmp` were removed.
  const dir = await mkdtemp(join(tmpdir(), 'hq-snap-leftovers-'));
  try {
    const leftovers = [
      'incoming-1-1.tmp',
      'incoming-1-2.tmp.partial',
      'incoming-1-2.tmp.partial-journal',
      'incoming-1-3.tmp.partial-wal',
    ];
    for (const name of leftovers) await writeFile(join(dir, name), 'x');
    await writeFile(join(dir, 'notes.txt'), 'kept');
    await SnapshotStore.open(dir);
    for (const name of leftovers)
      await assert.rejects(access(join(dir, name)), { code: 'ENOENT' }, `${name} removed`);
    await access(join(dir, 'notes.txt'));
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
