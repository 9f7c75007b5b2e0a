import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { assertNever } from '../../src/lib/assert.js';
import { Prng } from '../../src/lib/prng.js';
import {
  type CheckResult,
  checkLinearizable,
  type KvOp,
  type KvResult,
  type Operation,
} from './linearizability.js';

/** Builds histories tersely; ids are assigned in order. `ret: null` means outcome unknown. */
class History {
  readonly ops: Operation[] = [];

  write(key: string, value: number, call: number, ret: number | null, clientId = 0): this {
    return this.add(
      { type: 'write', key, value },
      ret === null ? null : { type: 'write' },
      call,
      ret,
      clientId,
    );
  }

  read(key: string, value: number | null, call: number, ret: number, clientId = 0): this {
    return this.add({ type: 'read', key }, { type: 'read', value }, call, ret, clientId);
  }

  readUnknown(key: string, call: number, clientId = 0): this {
    return this.add({ type: 'read', key }, null, call, null, clientId);
  }

  cas(
    key: string,
    expected: number | null,
    value: number,
    ok: boolean | null,
    call: number,
    ret: number | null,
    clientId = 0,
  ): this {
    const result: KvResult | null = ok === null ? null : { type: 'cas', ok };
    return this.add({ type: 'cas', key, expected, value }, result, call, ret, clientId);
  }

  private add(op: KvOp, result: KvResult | null, call: number, ret: number | null, clientId: number): this {
    this.ops.push({ id: this.ops.length, clientId, op, call, return: ret, result });
    return this;
  }
}

function assertOk(result: CheckResult): void {
  assert.equal(result.ok, true, result.ok === false ? result.explanation : JSON.stringify(result));
}

function assertViolation(result: CheckResult, key: string): Extract<CheckResult, { ok: false }> {
  assert.equal(result.ok, false, `expected a violation on ${key}, got ${JSON.stringify(result)}`);
  assert(result.ok === false);
  assert.equal(result.key, key);
  return result;
}

describe('linearizability checker: single key', () => {
  test('a correct sequential history passes', () => {
    const h = new History()
      .read('x', null, 0, 1)
      .write('x', 1, 2, 3)
      .read('x', 1, 4, 5)
      .cas('x', 1, 2, true, 6, 7)
      .cas('x', 1, 3, false, 8, 9)
      .read('x', 2, 10, 11);
    const result = checkLinearizable(h.ops);
    assertOk(result);
    assert(result.ok === true);
    assert.equal(result.keysChecked, 1);
  });

  test('a read returning a value never written fails', () => {
    const h = new History().write('x', 1, 0, 10).read('x', 7, 11, 20);
    assertViolation(checkLinearizable(h.ops), 'x');
  });

  test('a stale read after a completed write fails, and the report names the prefix and the op', () => {
    const h = new History().write('x', 1, 0, 10).write('x', 2, 11, 20).read('x', 1, 21, 30);
    const result = assertViolation(checkLinearizable(h.ops), 'x');
    assert.deepEqual(result.ops, h.ops);
    assert.match(result.explanation, /"x"/);
    assert.match(result.explanation, /prefix, 2 ops: #0 c0 write 1 \[0, 10\]; #1 c0 write 2 \[11, 20\]/);
    assert.match(result.explanation, /Cannot place next: #2 c0 read → 1 \[21, 30\]/);
  });

  test('a write concurrent with a read may be ordered either way', () => {
    const before = new History().write('x', 1, 0, 10, 1).read('x', null, 5, 15, 2);
    const after = new History().write('x', 1, 0, 10, 1).read('x', 1, 5, 15, 2);
    assertOk(checkLinearizable(before.ops));
    assertOk(checkLinearizable(after.ops));
  });

  test('ops touching at the same instant are concurrent (closed intervals)', () => {
    const h = new History().write('x', 1, 0, 10, 1).read('x', null, 10, 20, 2);
    assertOk(checkLinearizable(h.ops));
  });

  test('a cas that succeeds although the expected value does not match fails', () => {
    const h = new History().write('x', 1, 0, 10).cas('x', 5, 6, true, 11, 20);
    assertViolation(checkLinearizable(h.ops), 'x');
  });

  test('a cas that fails although the expected value matches fails', () => {
    const h = new History().write('x', 1, 0, 10).cas('x', 1, 6, false, 11, 20);
    assertViolation(checkLinearizable(h.ops), 'x');
  });

  test('a cas on an absent key expects null', () => {
    const h = new History().cas('x', null, 3, true, 0, 10).read('x', 3, 11, 20);
    assertOk(checkLinearizable(h.ops));
  });

  test('two concurrent cas from the same expected value cannot both succeed', () => {
    const h = new History()
      .write('x', 1, 0, 10)
      .cas('x', 1, 2, true, 20, 30, 1)
      .cas('x', 1, 3, true, 21, 31, 2);
    assertViolation(checkLinearizable(h.ops), 'x');
    const oneWins = new History()
      .write('x', 1, 0, 10)
      .cas('x', 1, 2, true, 20, 30, 1)
      .cas('x', 1, 3, false, 21, 31, 2);
    assertOk(checkLinearizable(oneWins.ops));
  });
});

describe('linearizability checker: unknown outcomes', () => {
  test('an unknown-outcome write observed by a later read passes', () => {
    const h = new History().write('x', 1, 0, 10).write('x', 2, 11, null).read('x', 2, 50, 60);
    assertOk(checkLinearizable(h.ops));
  });

  test('an unknown-outcome write never observed passes', () => {
    const h = new History().write('x', 1, 0, 10).write('x', 2, 11, null).read('x', 1, 50, 60);
    assertOk(checkLinearizable(h.ops));
  });

  test('an unknown-outcome write may take effect long after its call', () => {
    const h = new History()
      .write('x', 2, 0, null, 1)
      .read('x', null, 10, 20, 2)
      .write('x', 1, 30, 40, 2)
      .read('x', 1, 50, 60, 2)
      .read('x', 2, 70, 80, 2);
    assertOk(checkLinearizable(h.ops));
  });

  test('reading the older value after an unknown write was observed fails', () => {
    const h = new History()
      .write('x', 1, 0, 10)
      .write('x', 2, 11, null)
      .read('x', 2, 20, 30)
      .read('x', 1, 40, 50);
    assertViolation(checkLinearizable(h.ops), 'x');
  });

  test('an unknown-outcome cas takes effect only where its expected value matches', () => {
    const observedAfterMatch = new History()
      .write('x', 1, 0, 10)
      .cas('x', 1, 2, null, 11, null)
      .read('x', 2, 50, 60);
    assertOk(checkLinearizable(observedAfterMatch.ops));
    const neverMatches = new History()
      .write('x', 1, 0, 10)
      .cas('x', 5, 2, null, 11, null)
      .read('x', 2, 50, 60);
    assertViolation(checkLinearizable(neverMatches.ops), 'x');
  });

  test('many unknown writes nobody observed still let a later violation be proven, within a small budget', () => {
    const h = new History().write('x', 1, 0, 10);
    for (let i = 0; i < 40; i++) h.write('x', 100 + i, 1 + i, null, 1 + i);
    h.write('x', 2, 50, 60).read('x', 1, 70, 80);
    assertViolation(checkLinearizable(h.ops, { statesMax: 10_000 }), 'x');
  });

  test('unknown writes each observed once, then a violation: proven within a small budget', () => {
    const h = new History();
    const unknownWrites = 20;
    for (let i = 0; i < unknownWrites; i++) h.write('x', 100 + i, i, null, 1 + i);
    for (let i = 0; i < unknownWrites; i++) {
      const t = 100 + 10 * i;
      // The failed cas accepts any value, so an unknown write could be placed uselessly before it.
      h.cas('x', 999, 0, false, t, t + 1)
        .write('x', 1, t + 2, t + 3)
        .read('x', 100 + i, t + 4, t + 5);
    }
    assertOk(checkLinearizable(h.ops, { statesMax: 10_000 }));
    h.read('x', 100, 1000, 1001); // write 100 took effect once, before the first round's read
    assertViolation(checkLinearizable(h.ops, { statesMax: 10_000 }), 'x');
  });

  test('interchangeable unknown writes each explain at most one read, within a small budget', () => {
    const twins = 20;
    const h = new History();
    for (let i = 0; i < twins; i++) h.write('x', 5, i, null, 1 + i);
    // Each read of 5 after a write of 1 needs one more of the unknown writes of 5.
    const rounds = (extra: number): Operation[] => {
      const r = new History();
      r.ops.push(...h.ops);
      for (let i = 0; i < twins + extra; i++) {
        const t = 100 + 10 * i;
        r.write('x', 1, t, t + 1).read('x', 5, t + 2, t + 3);
      }
      return r.ops;
    };
    assertOk(checkLinearizable(rounds(0), { statesMax: 10_000 }));
    assertViolation(checkLinearizable(rounds(1), { statesMax: 10_000 }), 'x');
  });

  test('an unknown-outcome read constrains nothing', () => {
    const h = new History().write('x', 1, 0, 10).readUnknown('x', 5).read('x', 1, 20, 30);
    assertOk(checkLinearizable(h.ops));
  });
});

describe('linearizability checker: many keys and limits', () => {
  test('a violation on one key among many is reported with that key and its history only', () => {
    const h = new History();
    for (let k = 0; k < 6; k++) {
      const key = `k${k}`;
      const base = k * 100;
      h.write(key, k + 1, base, base + 10, k).read(key, k + 1, base + 20, base + 30, k);
    }
    h.write('k3', 9, 1000, 1010, 3).read('k3', 4, 1020, 1030, 3); // stale: 9 was written before
    const result = assertViolation(checkLinearizable(h.ops), 'k3');
    assert.ok(result.ops.length === 4 && result.ops.every((o) => o.op.key === 'k3'));
    assert.match(result.explanation, /"k3"/);
  });

  test('every key is counted when all pass', () => {
    const h = new History().write('a', 1, 0, 1).write('b', 2, 0, 1).read('c', null, 0, 1);
    const result = checkLinearizable(h.ops);
    assert.equal(result.ok, true);
    assert(result.ok === true);
    assert.equal(result.keysChecked, 3);
  });

  test('an exhausted search budget is reported as unknown, not as a verdict', () => {
    const h = new History().write('x', 1, 0, 10).write('x', 2, 11, 20).read('x', 2, 21, 30);
    const result = checkLinearizable(h.ops, { statesMax: 1 });
    assert.equal(result.ok, 'unknown');
    assert(result.ok === 'unknown');
    assert.equal(result.key, 'x');
  });

  test('a long sequential history on one key is checked without recursion', () => {
    const h = new History();
    for (let i = 0; i < 3000; i++) {
      if (i % 2 === 0) h.write('x', i, 2 * i, 2 * i + 1);
      else h.read('x', i - 1, 2 * i, 2 * i + 1);
    }
    assertOk(checkLinearizable(h.ops));
  });
});

// ---------------------------------------------------------------------------------------------
// Histories that are linearizable by construction: clients run ops against a real in-memory
// register; each op takes effect at one instant strictly between its call and its return.

interface Step {
  client: number;
  key: number;
  kind: number;
  value: number;
  /** 0 = expect absent, otherwise expect that value. */
  expected: number;
  /** 0 = the client loses track of the op (outcome unknown); 9 = a lost op may take effect now. */
  fate: number;
}

interface Shape {
  clients: number;
  keys: number;
  /** Divides the raw clock, so that distinct instants collide and test the closed-interval rule. */
  timeCoarse: number;
}

interface InFlight {
  o: Operation;
  result: KvResult | null; // set when the op takes effect
}

function execute(register: Map<string, number>, op: KvOp): KvResult {
  const current = register.get(op.key) ?? null;
  switch (op.type) {
    case 'write':
      register.set(op.key, op.value);
      return { type: 'write' };
    case 'read':
      return { type: 'read', value: current };
    case 'cas':
      if (current !== op.expected) return { type: 'cas', ok: false };
      register.set(op.key, op.value);
      return { type: 'cas', ok: true };
    default:
      assertNever(op, 'op');
  }
}

function makeOp(step: Step, key: string): KvOp {
  switch (step.kind % 3) {
    case 0:
      return { type: 'write', key, value: step.value };
    case 1:
      return { type: 'read', key };
    default:
      return { type: 'cas', key, expected: step.expected === 0 ? null : step.expected, value: step.value };
  }
}

/** Interprets `steps`; ends with one sequential read per key so that every history has known reads. */
function buildHistory(steps: readonly Step[], shape: Shape, opsMax = Number.POSITIVE_INFINITY): Operation[] {
  const register = new Map<string, number>();
  const history: Operation[] = [];
  const inFlight: (InFlight | null)[] = new Array<InFlight | null>(shape.clients).fill(null);
  // Ops whose client gave up before they took effect: they may still take effect later, or never.
  const lost: InFlight[] = [];
  let rawTime = 0;
  const now = (): number => Math.floor(rawTime++ / shape.timeCoarse);
  const takeEffect = (f: InFlight): void => {
    rawTime++; // strictly after the call, strictly before the return
    f.result = execute(register, f.o.op);
  };

  for (const step of steps) {
    const lostOp = lost.length > 0 && step.fate === 9 ? lost.shift() : undefined;
    if (lostOp !== undefined) {
      takeEffect(lostOp);
      continue;
    }
    const c = step.client % shape.clients;
    const f = inFlight[c];
    if (f === null || f === undefined) {
      if (history.length >= opsMax) continue;
      const o: Operation = {
        id: history.length,
        clientId: c,
        op: makeOp(step, `k${step.key % shape.keys}`),
        call: now(),
        return: null,
        result: null,
      };
      history.push(o);
      inFlight[c] = { o, result: null };
    } else if (f.result === null) {
      if (step.fate === 0) {
        if (step.value % 2 === 0) lost.push(f);
        inFlight[c] = null;
      } else {
        takeEffect(f);
      }
    } else {
      // fate 0: it took effect but the reply was lost; the op stays with return = null.
      if (step.fate !== 0) {
        f.o.return = now();
        f.o.result = f.result;
      }
      inFlight[c] = null;
    }
  }
  // Ops still in flight when the run ends keep an unknown outcome (return = null).
  for (let k = 0; k < shape.keys; k++) {
    const op: KvOp = { type: 'read', key: `k${k}` };
    const call = now();
    const result = execute(register, op);
    history.push({ id: history.length, clientId: 0, op, call, return: now(), result });
  }
  return history;
}

const stepArb: fc.Arbitrary<Step> = fc.record({
  client: fc.nat(3),
  key: fc.nat(2),
  kind: fc.nat(2),
  value: fc.integer({ min: 1, max: 4 }),
  expected: fc.nat(4),
  fate: fc.nat(9),
});

const shapeArb: fc.Arbitrary<Shape> = fc.record({
  clients: fc.integer({ min: 1, max: 4 }),
  keys: fc.integer({ min: 1, max: 3 }),
  timeCoarse: fc.integer({ min: 1, max: 3 }),
});

/**
 * Reference: tries every order of the ops (unknown ones optionally left out) that respects real
 * time (a before b when a returned before b was called). Exponential: only for a handful of ops.
 */
function linearizableByEnumeration(ops: readonly Operation[]): boolean {
  const placed = new Array<boolean>(ops.length).fill(false);
  const step = (value: number | null, o: Operation): { value: number | null } | null => {
    const r = o.result;
    switch (o.op.type) {
      case 'write':
        return { value: o.op.value };
      case 'read':
        return r === null || (r.type === 'read' && r.value === value) ? { value } : null;
      case 'cas': {
        const matches = value === o.op.expected;
        const ok = r === null ? true : r.type === 'cas' && r.ok;
        if (ok) return matches ? { value: o.op.value } : null;
        return matches ? null : { value };
      }
      default:
        return assertNever(o.op, 'op');
    }
  };
  const search = (value: number | null): boolean => {
    if (ops.every((o, i) => placed[i] || o.return === null)) return true;
    for (let i = 0; i < ops.length; i++) {
      const o = ops[i]!;
      if (placed[i]) continue;
      const mustPrecede = ops.some((p, j) => !placed[j] && p.return !== null && p.return < o.call);
      const next = mustPrecede ? null : step(value, o);
      if (next === null) continue;
      placed[i] = true;
      const found = search(next.value);
      placed[i] = false;
      if (found) return true;
    }
    return false;
  };
  return search(null);
}

interface SmallOp {
  kind: number;
  value: number;
  expected: number;
  call: number;
  durationTicks: number;
  unknown: number;
  readValue: number;
  casOk: boolean;
  client: number;
}

const smallOpArb: fc.Arbitrary<SmallOp> = fc.record({
  kind: fc.nat(2),
  value: fc.integer({ min: 1, max: 2 }),
  expected: fc.nat(2),
  call: fc.nat(10),
  durationTicks: fc.nat(8),
  unknown: fc.nat(2),
  readValue: fc.nat(2),
  casOk: fc.boolean(),
  client: fc.nat(3),
});

function smallHistory(raw: readonly SmallOp[]): Operation[] {
  return raw.map((r, id) => {
    const key = 'x';
    const op: KvOp =
      r.kind === 0
        ? { type: 'write', key, value: r.value }
        : r.kind === 1
          ? { type: 'read', key }
          : { type: 'cas', key, expected: r.expected === 0 ? null : r.expected, value: r.value };
    const unknown = r.unknown === 0;
    let result: KvResult | null = null;
    if (!unknown) {
      if (op.type === 'write') result = { type: 'write' };
      else if (op.type === 'read') result = { type: 'read', value: r.readValue === 0 ? null : r.readValue };
      else result = { type: 'cas', ok: r.casOk };
    }
    const ret = unknown ? null : r.call + r.durationTicks;
    return { id, clientId: r.client, op, call: r.call, return: ret, result };
  });
}

describe('linearizability checker: properties', () => {
  test('agrees with enumerating every order on small random histories, unknown outcomes included', () => {
    let violations = 0;
    fc.assert(
      fc.property(fc.array(smallOpArb, { minLength: 1, maxLength: 9 }), (raw) => {
        const history = smallHistory(raw);
        const expected = linearizableByEnumeration(history);
        if (!expected) violations++;
        assert.equal(checkLinearizable(history).ok, expected, JSON.stringify(history));
      }),
      { numRuns: 3000, seed: 20240608 },
    );
    assert.ok(
      violations > 300 && violations < 2700,
      `both verdicts are exercised (${violations} violations)`,
    );
  });

  test('histories linearizable by construction pass; one impossible read makes them fail', () => {
    fc.assert(
      fc.property(
        shapeArb,
        fc.array(stepArb, { maxLength: 150, size: 'max' }),
        fc.nat(),
        (shape, steps, pick) => {
          const history = buildHistory(steps, shape);
          assertOk(checkLinearizable(history));

          const reads = history.filter((o) => o.result?.type === 'read');
          const victim = reads[pick % reads.length]!;
          const mutated = history.map((o) =>
            o === victim ? { ...o, result: { type: 'read' as const, value: -1 } } : o,
          );
          assertViolation(checkLinearizable(mutated), victim.op.key);
        },
      ),
      { numRuns: 200, seed: 20240607 },
    );
  });

  test('a 2,000-op history over 10 keys with 5 concurrent clients is checked within the budget', () => {
    const rng = new Prng(7);
    const steps: Step[] = Array.from({ length: 12_000 }, () => ({
      client: rng.int(0, 5),
      key: rng.int(0, 10),
      kind: rng.int(0, 3),
      value: rng.int(1, 5),
      expected: rng.int(0, 5),
      fate: rng.int(0, 10),
    }));
    const history = buildHistory(steps, { clients: 5, keys: 10, timeCoarse: 1 }, 2000);
    assert.equal(history.length, 2000 + 10);
    assert.ok(history.some((o) => o.return === null));
    const result = checkLinearizable(history);
    assertOk(result);
    assert(result.ok === true);
    assert.equal(result.keysChecked, 10);
  });
});
