import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { encodeFrame, FrameDecoder } from '../../src/protocol/frame.js';
import { ProtocolError } from '../../src/protocol/protocol-error.js';

function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.byteLength, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.byteLength;
  }
  return out;
}

/** Cuts `bytes` at the given (sorted, deduplicated) offsets. */
function split(bytes: Uint8Array, cuts: number[]): Uint8Array[] {
  const points = [...new Set(cuts.map((c) => c % (bytes.byteLength + 1)))].sort((a, b) => a - b);
  const out: Uint8Array[] = [];
  let from = 0;
  for (const p of points) {
    out.push(bytes.subarray(from, p));
    from = p;
  }
  out.push(bytes.subarray(from));
  return out;
}

function expectProtocolError(fn: () => unknown, kind: ProtocolError['kind']): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof ProtocolError, `expected ProtocolError, got ${String(err)}`);
    assert.equal(err.code, 'HQL_PROTOCOL');
    assert.equal(err.kind, kind);
    return true;
  });
}

describe('framing', () => {
  test('any split of a stream of frames decodes to the same frames', () => {
    fc.assert(
      fc.property(
        fc.array(fc.uint8Array({ maxLength: 300 }), { maxLength: 20 }),
        fc.array(fc.nat(), { maxLength: 40 }),
        (payloads, cuts) => {
          const stream = concat(payloads.map(encodeFrame));
          const decoder = new FrameDecoder(1024);
          const out: Uint8Array[] = [];
          for (const chunk of split(stream, cuts)) out.push(...decoder.push(chunk));
          decoder.end();
          assert.deepEqual(
            out.map((f) => [...f]),
            payloads.map((p) => [...p]),
          );
          assert.equal(decoder.bufferedBytes, 0);
        },
      ),
      { numRuns: 300 },
    );
  });

  test('a stream fed one byte at a time decodes the same frames', () => {
    const payloads = [new Uint8Array([1, 2, 3]), new Uint8Array(0), new Uint8Array(70).fill(7)];
    const stream = concat(payloads.map(encodeFrame));
    const decoder = new FrameDecoder(100);
    const out: Uint8Array[] = [];
    for (let i = 0; i < stream.byteLength; i++) out.push(...decoder.push(stream.subarray(i, i + 1)));
    assert.deepEqual(
      out.map((f) => [...f]),
      payloads.map((p) => [...p]),
    );
  });

  test('a frame announcing more than frameBytesMax is refused before it is buffered', () => {
    const decoder = new FrameDecoder(16);
    const header = new Uint8Array([17, 0, 0, 0]);
    expectProtocolError(() => decoder.push(header), 'frame-too-large');
    // The decoder stays failed: nothing more is accepted from this stream.
    expectProtocolError(() => decoder.push(new Uint8Array(1)), 'frame-too-large');
  });

  test('a frame of exactly frameBytesMax is accepted', () => {
    const decoder = new FrameDecoder(16);
    const frames = decoder.push(encodeFrame(new Uint8Array(16).fill(9)));
    assert.equal(frames.length, 1);
    assert.equal(frames[0]?.byteLength, 16);
  });

  test('a stream ending inside a header or a payload is a truncated frame', () => {
    for (const cut of [1, 3, 4, 6]) {
      const decoder = new FrameDecoder(64);
      decoder.push(encodeFrame(new Uint8Array(5)).subarray(0, cut));
      expectProtocolError(() => decoder.end(), 'truncated-frame');
    }
  });

  test('a frame within one chunk is returned without a copy; one spanning chunks is assembled', () => {
    const decoder = new FrameDecoder(64);
    const stream = encodeFrame(new Uint8Array([5, 6, 7]));
    const [whole] = decoder.push(stream);
    assert.equal(whole?.buffer, stream.buffer);
    const spanning = [...decoder.push(stream.subarray(0, 5)), ...decoder.push(stream.subarray(5))];
    assert.deepEqual([...(spanning[0] ?? [])], [5, 6, 7]);
  });
});
