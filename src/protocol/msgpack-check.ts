/**
 * Checks msgpack bytes from an untrusted sender before a decoder sees them, without recursion:
 * one value, well formed, nothing after it, arrays and maps nested at most `depthMax` deep, and
 * every string (map keys too) valid UTF-8. msgpackr decodes a string that is not UTF-8 as text
 * with U+FFFD in it (a remote client's value would read back as something else than it sent), and
 * recurses once per level (a value nested 100,000 deep threw a RangeError).
 */
import { decodeUtf8 } from '../lib/utf8.js';

/** Why `bytes` are not one such msgpack value, or null. Bounded: every step reads a byte. */
export function msgpackProblem(bytes: Uint8Array, depthMax: number): string | null {
  const n = bytes.length;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let at = 0;
  // Items still to read at each open level; the bottom one is the value itself.
  const left: number[] = [1];
  const length = (size: 1 | 2 | 4): number | null => {
    if (at + size > n) return null;
    const v = size === 1 ? view.getUint8(at) : size === 2 ? view.getUint16(at) : view.getUint32(at);
    at += size;
    return v;
  };
  while (left.length > 0) {
    const top = left.length - 1;
    if (left[top] === 0) {
      left.pop();
      continue;
    }
    (left[top] as number)--;
    if (at >= n) return 'it ends in the middle of a value';
    const b = bytes[at++] as number;
    let skip = 0;
    let text = -1;
    let items = -1;
    if (b <= 0x7f || b >= 0xe0 || b === 0xc0 || b === 0xc2 || b === 0xc3) skip = 0;
    else if (b >= 0x80 && b <= 0x8f) items = 2 * (b & 0x0f);
    else if (b >= 0x90 && b <= 0x9f) items = b & 0x0f;
    else if (b >= 0xa0 && b <= 0xbf) text = b & 0x1f;
    else if (b === 0xc1) return `byte 0x${b.toString(16)} at ${at - 1} is not a msgpack type`;
    else if (b === 0xc4 || b === 0xc5 || b === 0xc6) {
      const len = length(b === 0xc4 ? 1 : b === 0xc5 ? 2 : 4);
      if (len === null) return 'it ends in the middle of a value';
      skip = len;
    } else if (b === 0xc7 || b === 0xc8 || b === 0xc9) {
      const len = length(b === 0xc7 ? 1 : b === 0xc8 ? 2 : 4);
      if (len === null) return 'it ends in the middle of a value';
      skip = len + 1; // the type byte
    } else if (b === 0xca) skip = 4;
    else if (b === 0xcb) skip = 8;
    else if (b >= 0xcc && b <= 0xd3) skip = 2 ** ((b - 0xcc) & 3);
    else if (b >= 0xd4 && b <= 0xd8) skip = 1 + 2 ** (b - 0xd4);
    else if (b === 0xd9 || b === 0xda || b === 0xdb) {
      const len = length(b === 0xd9 ? 1 : b === 0xda ? 2 : 4);
      if (len === null) return 'it ends in the middle of a value';
      text = len;
    } else {
      // 0xdc array16, 0xdd array32, 0xde map16, 0xdf map32
      const count = length(b === 0xdc || b === 0xde ? 2 : 4);
      if (count === null) return 'it ends in the middle of a value';
      items = b >= 0xde ? 2 * count : count;
    }
    if (text >= 0) {
      if (at + text > n) return 'it ends in the middle of a value';
      if (decodeUtf8(bytes.subarray(at, at + text)) === null)
        return `the string at byte ${at} is not UTF-8 (it would read back with U+FFFD in it)`;
      at += text;
    } else if (items >= 0) {
      // The container's own depth: the value itself is at depth 0.
      if (top >= depthMax) return `arrays and maps in it nest more than ${depthMax} levels deep`;
      left.push(items);
    } else {
      if (at + skip > n) return 'it ends in the middle of a value';
      at += skip;
    }
  }
  if (at !== n) return `${n - at} bytes follow the value`;
  return null;
}
