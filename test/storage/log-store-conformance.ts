/**
 * The behaviour every `LogStore` must have (openraft-style conformance suite). Run it from a
 * `*.test.ts` file with a factory for the implementation under test:
 *
 *   logStoreConformance('memory', async (limits) => ({ open: …, cleanup: … }));
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { assertNever } from '../../src/lib/assert.js';
import { encodedEntryBytes } from '../../src/protocol/entry-codec.js';
import type { Entry, HardState, LogIndex, NodeId, Term } from '../../src/raft/types.js';
import type { LogStore } from '../../src/storage/log-store.js';

export interface ConformanceLimits {
  /** The store must reject an entry that encodes to more bytes than this. */
  readonly entryBytesMax: number;
}

export interface LogStoreHarness {
  /**
   * Opens a store on the harness's durable state. Calling it again after `close()` models a
   * restart: the new store must see everything the previous one acknowledged.
   */
  open(): Promise<LogStore>;
  /** Removes whatever the harness created. */
  cleanup(): Promise<void>;
}

export type LogStoreFactory = (limits: ConformanceLimits) => Promise<LogStoreHarness>;

const LIMITS: ConformanceLimits = { entryBytesMax: 2048 };

const idx = (n: number) => n as LogIndex;
const trm = (n: number) => n as Term;

export function command(index: number, term: number, size = 8, fill = index): Entry {
  return {
    kind: 'command',
    index: idx(index),
    term: trm(term),
    data: new Uint8Array(size).fill(fill & 0xff),
  };
}

export function noop(index: number, term: number): Entry {
  return { kind: 'noop', index: idx(index), term: trm(term) };
}

export function config(index: number, term: number, voters: number[], learners: number[] = []): Entry {
  return {
    kind: 'config',
    index: idx(index),
    term: trm(term),
    membership: { voters: voters as NodeId[], learners: learners as NodeId[] },
  };
}

/** Commands [lo, hiExclusive) of term `term`, with sizes varying by index. */
export function commands(
  lo: number,
  hiExclusive: number,
  term: number,
  size = (i: number) => 10 + (i % 7) * 13,
) {
  const out: Entry[] = [];
  for (let i = lo; i < hiExclusive; i++) out.push(command(i, term, size(i)));
  return out;
}

async function withStore(
  factory: LogStoreFactory,
  body: (store: LogStore, reopen: () => Promise<LogStore>) => Promise<void>,
): Promise<void> {
  const harness = await factory(LIMITS);
  let store = await harness.open();
  try {
    await body(store, async () => {
      await store.close();
      store = await harness.open();
      return store;
    });
  } finally {
    await store.close();
    await harness.cleanup();
  }
}

function all(store: LogStore): Entry[] {
  return store.entries(store.firstIndex(), idx(store.lastIndex() + 1));
}

async function rejectsWith(p: Promise<unknown>, code: string): Promise<void> {
  await assert.rejects(p, (err: unknown) => (err as { code?: unknown }).code === code);
}

export function logStoreConformance(name: string, factory: LogStoreFactory): void {
  describe(`${name}: LogStore conformance`, () => {
    test('a new store is empty, with the purge point at (0, 0)', async () => {
      await withStore(factory, async (store) => {
        assert.equal(store.firstIndex(), 1);
        assert.equal(store.lastIndex(), 0);
        assert.equal(store.termAt(idx(0)), 0);
        assert.equal(store.termAt(idx(1)), undefined);
        assert.deepEqual(store.entries(idx(1), idx(1)), []);
        assert.equal(store.loadHardState(), null);
      });
    });

    test('appended entries of every kind read back, with their terms', async () => {
      await withStore(factory, async (store) => {
        const log = [noop(1, 1), command(2, 1, 100), config(3, 2, [1, 2, 3], [4]), command(4, 2, 0)];
        await store.append(log);
        assert.equal(store.lastIndex(), 4);
        assert.deepEqual(all(store), log);
        assert.deepEqual(store.entries(idx(2), idx(4)), log.slice(1, 3));
        assert.deepEqual(
          [0, 1, 2, 3, 4, 5].map((i) => store.termAt(idx(i))),
          [0, 1, 1, 2, 2, undefined],
        );
      });
    });

    test('an append is visible at once, before its promise resolves', async () => {
      await withStore(factory, async (store) => {
        const pending = store.append(commands(1, 4, 1));
        assert.equal(store.lastIndex(), 3);
        assert.deepEqual(all(store), commands(1, 4, 1));
        await pending;
      });
    });

    test('concurrent appends (group commit) all resolve, in order', async () => {
      await withStore(factory, async (store) => {
        const calls: Promise<void>[] = [];
        for (let i = 1; i <= 50; i++) calls.push(store.append([command(i, 1, 20 + i)]));
        await Promise.all(calls);
        assert.equal(store.lastIndex(), 50);
        assert.deepEqual(
          all(store),
          commands(1, 51, 1, (i) => 20 + i),
        );
      });
    });

    test('an append overlapping the log drops the old suffix first (Raft §5.3)', async () => {
      await withStore(factory, async (store) => {
        await store.append(commands(1, 11, 1));
        await store.append([command(6, 2, 5), noop(7, 2)]);
        assert.equal(store.lastIndex(), 7);
        assert.equal(store.termAt(idx(8)), undefined);
        assert.deepEqual(all(store), [...commands(1, 6, 1), command(6, 2, 5), noop(7, 2)]);
        await store.append([command(1, 3, 3)]);
        assert.deepEqual(all(store), [command(1, 3, 3)]);
      });
    });

    test('an overlapping append issued before the earlier one resolved wins', async () => {
      await withStore(factory, async (store) => {
        const first = store.append(commands(1, 21, 1));
        const second = store.append(commands(15, 18, 2));
        await Promise.all([first, second]);
        assert.deepEqual(all(store), [...commands(1, 15, 1), ...commands(15, 18, 2)]);
      });
    });

    test('purgeTo keeps the entries after a matching purge point', async () => {
      await withStore(factory, async (store) => {
        await store.append(commands(1, 11, 1));
        await store.purgeTo(idx(4), trm(1));
        assert.equal(store.firstIndex(), 5);
        assert.equal(store.lastIndex(), 10);
        assert.equal(store.termAt(idx(4)), 1);
        assert.equal(store.termAt(idx(3)), undefined);
        assert.deepEqual(all(store), commands(5, 11, 1));
        await store.append([command(11, 2)]);
        assert.deepEqual(all(store), [...commands(5, 11, 1), command(11, 2)]);
      });
    });

    test('purgeTo the last index leaves an empty log that continues after it', async () => {
      await withStore(factory, async (store) => {
        await store.append(commands(1, 6, 1));
        await store.purgeTo(idx(5), trm(1));
        assert.equal(store.firstIndex(), 6);
        assert.equal(store.lastIndex(), 5);
        assert.equal(store.termAt(idx(5)), 1);
        await store.append(commands(6, 8, 1));
        assert.deepEqual(all(store), commands(6, 8, 1));
      });
    });

    test('purgeTo beyond the log, or with another term, discards the whole log (Raft §7)', async () => {
      await withStore(factory, async (store) => {
        await store.append(commands(1, 11, 1));
        await store.purgeTo(idx(20), trm(3));
        assert.equal(store.firstIndex(), 21);
        assert.equal(store.lastIndex(), 20);
        assert.equal(store.termAt(idx(20)), 3);
        assert.equal(store.termAt(idx(10)), undefined);
        await store.append([command(21, 3)]);
        await store.purgeTo(idx(21), trm(4));
        assert.equal(store.firstIndex(), 22);
        assert.equal(store.lastIndex(), 21);
        assert.equal(store.termAt(idx(21)), 4);
        assert.deepEqual(all(store), []);
      });
    });

    test('purgeTo at or before the purge point changes nothing', async () => {
      await withStore(factory, async (store) => {
        await store.append(commands(1, 11, 1));
        await store.purgeTo(idx(5), trm(1));
        await store.purgeTo(idx(3), trm(1));
        await store.purgeTo(idx(5), trm(9));
        assert.equal(store.firstIndex(), 6);
        assert.equal(store.termAt(idx(5)), 1);
        assert.deepEqual(all(store), commands(6, 11, 1));
      });
    });

    test('entries() stops at bytesMax but always returns at least one entry', async () => {
      await withStore(factory, async (store) => {
        const log = commands(1, 11, 1, () => 100);
        await store.append(log);
        const one = encodedEntryBytes(log[0]!);
        assert.deepEqual(store.entries(idx(1), idx(11), 0), log.slice(0, 1));
        assert.deepEqual(store.entries(idx(1), idx(11), one), log.slice(0, 1));
        assert.deepEqual(store.entries(idx(1), idx(11), 3 * one), log.slice(0, 3));
        assert.deepEqual(store.entries(idx(1), idx(11), 3 * one + one - 1), log.slice(0, 3));
        assert.deepEqual(store.entries(idx(4), idx(11), 1e9), log.slice(3));
        assert.deepEqual(store.entries(idx(5), idx(5), 0), []);
      });
    });

    test('an entry over entryBytesMax is rejected, nothing changes, and the store keeps working', async () => {
      await withStore(factory, async (store) => {
        await store.append(commands(1, 3, 1));
        const big = command(3, 1, LIMITS.entryBytesMax);
        await rejectsWith(store.append([command(3, 1), big]), 'HQL_ENTRY_TOO_LARGE');
        assert.equal(store.lastIndex(), 2);
        await store.append([command(3, 1)]);
        assert.deepEqual(
          all(store),
          commands(1, 4, 1, (i) => (i === 3 ? 8 : 10 + (i % 7) * 13)),
        );
      });
    });

    test('hard state round-trips, the latest save wins, and it survives a restart', async () => {
      await withStore(factory, async (store, reopen) => {
        const a: HardState = { term: trm(3), vote: 2 as NodeId, commit: idx(0) };
        const b: HardState = { term: trm(2 ** 40), vote: null, commit: idx(2 ** 52) };
        await store.saveHardState(a);
        assert.deepEqual(store.loadHardState(), a);
        await Promise.all([store.saveHardState(a), store.saveHardState(b)]);
        assert.deepEqual(store.loadHardState(), b);
        store = await reopen();
        assert.deepEqual(store.loadHardState(), b);
      });
    });

    test('a restart keeps the log, the purge point and truncations', async () => {
      await withStore(factory, async (store, reopen) => {
        await store.append([config(1, 1, [1, 2, 3]), ...commands(2, 40, 1)]);
        await store.append(commands(30, 35, 2));
        await store.purgeTo(idx(10), trm(1));
        const before = all(store);
        store = await reopen();
        assert.equal(store.firstIndex(), 11);
        assert.equal(store.lastIndex(), 34);
        assert.equal(store.termAt(idx(10)), 1);
        assert.deepEqual(all(store), before);
        await store.purgeTo(idx(50), trm(5));
        store = await reopen();
        assert.equal(store.firstIndex(), 51);
        assert.equal(store.lastIndex(), 50);
        assert.equal(store.termAt(idx(50)), 5);
        await store.append([noop(51, 5)]);
        store = await reopen();
        assert.deepEqual(all(store), [noop(51, 5)]);
      });
    });

    test('after close every call fails with HQL_CLOSED', async () => {
      const harness = await factory(LIMITS);
      const store = await harness.open();
      try {
        await store.append(commands(1, 3, 1));
        await store.close();
        await store.close();
        assert.throws(() => store.lastIndex(), { code: 'HQL_CLOSED' });
        assert.throws(() => store.entries(idx(1), idx(2)), { code: 'HQL_CLOSED' });
        await rejectsWith(store.append([command(3, 1)]), 'HQL_CLOSED');
        await rejectsWith(store.purgeTo(idx(1), trm(1)), 'HQL_CLOSED');
        await rejectsWith(store.saveHardState({ term: trm(1), vote: null, commit: idx(0) }), 'HQL_CLOSED');
      } finally {
        await harness.cleanup();
      }
    });

    test('random operation sequences match a simple model (also across restarts)', async () => {
      await fc.assert(
        fc.asyncProperty(fc.array(opArb, { minLength: 1, maxLength: 25 }), async (ops) => {
          await withStore(factory, async (store, reopen) => {
            const model = new ModelLog();
            for (const op of ops) {
              store = await applyOp(op, store, model, reopen);
              checkAgainstModel(store, model);
            }
          });
        }),
        { numRuns: 20 },
      );
    });
  });
}

// ---- the model-based property test ----

type Op =
  | {
      readonly type: 'append';
      readonly at: number;
      readonly count: number;
      readonly termUp: number;
      readonly sizes: readonly number[];
    }
  | { readonly type: 'concurrent'; readonly calls: number; readonly sizes: readonly number[] }
  | { readonly type: 'purge'; readonly at: number; readonly matchTerm: boolean }
  | { readonly type: 'read'; readonly from: number; readonly bytesMax: number }
  | { readonly type: 'restart' };

const sizeArb = fc.oneof(fc.integer({ min: 0, max: 40 }), fc.integer({ min: 0, max: 700 }));

const opArb: fc.Arbitrary<Op> = fc.oneof(
  {
    weight: 6,
    arbitrary: fc
      .record({
        at: fc.oneof(fc.constant(1), fc.double({ min: 0, max: 1, noNaN: true })),
        count: fc.integer({ min: 1, max: 6 }),
        termUp: fc.integer({ min: 0, max: 1 }),
        sizes: fc.array(sizeArb, { minLength: 6, maxLength: 6 }),
      })
      .map((r) => ({ type: 'append' as const, ...r })),
  },
  {
    weight: 2,
    arbitrary: fc
      .record({
        calls: fc.integer({ min: 2, max: 8 }),
        sizes: fc.array(sizeArb, { minLength: 8, maxLength: 8 }),
      })
      .map((r) => ({ type: 'concurrent' as const, ...r })),
  },
  {
    weight: 2,
    arbitrary: fc
      .record({ at: fc.double({ min: 0, max: 1.2, noNaN: true }), matchTerm: fc.boolean() })
      .map((r) => ({ type: 'purge' as const, ...r })),
  },
  {
    weight: 2,
    arbitrary: fc
      .record({
        from: fc.double({ min: 0, max: 1, noNaN: true }),
        bytesMax: fc.integer({ min: 0, max: 3000 }),
      })
      .map((r) => ({ type: 'read' as const, ...r })),
  },
  { weight: 1, arbitrary: fc.constant({ type: 'restart' as const }) },
);

class ModelLog {
  purgedIndex = 0;
  purgedTerm = 0;
  log: Entry[] = [];

  get first(): number {
    return this.purgedIndex + 1;
  }
  get last(): number {
    return this.purgedIndex + this.log.length;
  }
  termAt(i: number): number | undefined {
    if (i === this.purgedIndex) return this.purgedTerm;
    return this.log[i - this.first]?.term;
  }
  append(entries: readonly Entry[]): void {
    this.log.length = entries[0]!.index - this.first;
    this.log.push(...entries);
  }
  purge(index: number, term: number): void {
    if (index < this.first) return;
    if (index <= this.last && this.termAt(index) === term) this.log.splice(0, index - this.purgedIndex);
    else this.log = [];
    this.purgedIndex = index;
    this.purgedTerm = term;
  }
}

function entryAt(index: number, term: number, size: number): Entry {
  if (size % 11 === 3) return noop(index, term);
  if (size % 11 === 7) return config(index, term, [1, 2, size], [size + 1]);
  return command(index, term, size, index * 7 + term);
}

async function applyOp(
  op: Op,
  store: LogStore,
  model: ModelLog,
  reopen: () => Promise<LogStore>,
): Promise<LogStore> {
  switch (op.type) {
    case 'append': {
      // Start anywhere in [first, last + 1], most often at the end.
      const span = model.last + 1 - model.first;
      const start = op.at === 1 ? model.last + 1 : model.first + Math.floor(op.at * (span + 1));
      const term = model.termAt(start - 1)! + op.termUp + (start <= model.last ? 1 : 0);
      const entries = op.sizes.slice(0, op.count).map((s, i) => entryAt(start + i, term, s));
      model.append(entries);
      await store.append(entries);
      return store;
    }
    case 'concurrent': {
      const term = model.termAt(model.last)!;
      const calls: Promise<void>[] = [];
      for (let c = 0; c < op.calls; c++) {
        const entries = [entryAt(model.last + 1, term, op.sizes[c]!)];
        model.append(entries);
        calls.push(store.append(entries));
      }
      await Promise.all(calls);
      return store;
    }
    case 'purge': {
      const index = model.purgedIndex + Math.floor(op.at * (model.last - model.purgedIndex + 1));
      const known = model.termAt(index);
      const term = op.matchTerm && known !== undefined ? known : model.termAt(model.last)! + 1;
      model.purge(index, term);
      await store.purgeTo(index as LogIndex, term as Term);
      return store;
    }
    case 'read': {
      const from = model.first + Math.floor(op.from * (model.last + 1 - model.first));
      const got = store.entries(from as LogIndex, (model.last + 1) as LogIndex, op.bytesMax);
      const want: Entry[] = [];
      let bytes = 0;
      for (let i = from; i <= model.last; i++) {
        const e = model.log[i - model.first]!;
        bytes += encodedEntryBytes(e);
        if (want.length > 0 && bytes > op.bytesMax) break;
        want.push(e);
      }
      assert.deepEqual(got, want);
      return store;
    }
    case 'restart':
      return reopen();
    default:
      return assertNever(op, 'op');
  }
}

function checkAgainstModel(store: LogStore, model: ModelLog): void {
  assert.equal(store.firstIndex(), model.first);
  assert.equal(store.lastIndex(), model.last);
  for (let i = model.first - 2; i <= model.last + 1; i++) {
    assert.equal(store.termAt(i as LogIndex), i >= 0 ? model.termAt(i) : undefined, `termAt(${i})`);
  }
  assert.deepEqual(all(store), model.log);
}
