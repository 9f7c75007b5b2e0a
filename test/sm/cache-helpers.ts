/** Helpers of the cache state machine tests: build entries, apply one command, read results. */
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { type Entry, logIndex, term } from '../../src/raft/types.js';
import { type CacheCommand, type CacheSession, encodeCacheCommand } from '../../src/sm/cache/command.js';
import type { CacheOutcome, CacheResult } from '../../src/sm/cache/result.js';
import { CacheStateMachine, type CacheStateMachineOptions } from '../../src/sm/cache/state-machine.js';

export const T0 = 1_700_000_000_000;

export function bytes(s: string): Uint8Array {
  return new TextEncoder().encode(s);
}

export function text(b: Uint8Array | null): string | null {
  return b === null ? null : new TextDecoder().decode(b);
}

export function commandEntry(
  index: number,
  command: CacheCommand,
  nowMs: number,
  session?: CacheSession,
): Entry {
  const data = encodeCacheCommand(session === undefined ? { nowMs, command } : { nowMs, command, session });
  return { kind: 'command', index: logIndex(index), term: term(1), data };
}

/** A state machine with a `run` that applies one command as the next entry. */
export class Harness {
  readonly sm: CacheStateMachine;

  constructor(options: CacheStateMachineOptions = {}) {
    this.sm = new CacheStateMachine(options);
  }

  get next(): number {
    return this.sm.appliedIndex() + 1;
  }

  run(command: CacheCommand, nowMs: number, session?: CacheSession): CacheResult {
    const [r] = this.sm.applySync([commandEntry(this.next, command, nowMs, session)], [true]);
    assert.ok(r !== undefined && !Array.isArray(r));
    return r as CacheResult;
  }

  /** Runs a command that must succeed; returns its outcome. */
  ok<T extends CacheOutcome['type']>(
    command: CacheCommand & { type: T },
    nowMs: number,
  ): Extract<CacheOutcome, { type: T }> {
    const r = this.run(command, nowMs);
    assert.ok(r.ok, `${command.type} failed: ${r.ok ? '' : r.error.message}`);
    return r.value as Extract<CacheOutcome, { type: T }>;
  }

  raw(data: Uint8Array): CacheResult {
    const entry: Entry = { kind: 'command', index: logIndex(this.next), term: term(1), data };
    const [r] = this.sm.applySync([entry], [true]);
    assert.ok(r !== undefined && !Array.isArray(r));
    return r as CacheResult;
  }
}

/** The snapshot's bytes, in memory. */
export async function snapshotBytes(sm: CacheStateMachine): Promise<Uint8Array> {
  const chunks: Uint8Array[] = [];
  await sm.writeSnapshot((c) => {
    chunks.push(c);
  });
  return Buffer.concat(chunks);
}

export async function* chunksOf(b: Uint8Array, size: number): AsyncGenerator<Uint8Array> {
  for (let i = 0; i < b.length; i += size) yield b.subarray(i, Math.min(b.length, i + size));
}

/** Command types for property tests of the common-command codecs: theirs, others, and a wrong one. */
export const commandTypeNearCommon = fc.constantFrom(
  'put',
  'replace',
  'putIfAbsent',
  'delete',
  'get',
  'getRemove',
  'clear',
  'expire',
  'putx',
);
