/**
 * Whether `text` is base64 as JSON carries bytes (`{"$blob": …}`): the standard alphabet, padded
 * to a multiple of four characters. Checked without a regular expression over groups: one with a
 * repeated group (`(?:[A-Za-z0-9+/]{4})*`) ran out of stack on a string of 4 MiB and more, and
 * a request of a large blob failed with HQL_INTERNAL (found by an outside probe).
 */
export function isPaddedBase64(text: string): boolean {
  const n = text.length;
  if (n % 4 !== 0) return false;
  let padding = 0;
  if (n > 0 && text.charCodeAt(n - 1) === 0x3d) padding = n > 1 && text.charCodeAt(n - 2) === 0x3d ? 2 : 1;
  // Bounded by the length of the text.
  for (let i = 0; i < n - padding; i++) {
    const c = text.charCodeAt(i);
    const ok =
      (c >= 0x41 && c <= 0x5a) || // A-Z
      (c >= 0x61 && c <= 0x7a) || // a-z
      (c >= 0x30 && c <= 0x39) || // 0-9
      c === 0x2b || // +
      c === 0x2f; // /
    if (!ok) return false;
  }
  return true;
}
