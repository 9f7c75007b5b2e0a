/**
 * Text a user gives as bytes (a JSON body, a config file, a migration file): UTF-8, as JSON and
 * TOML require. Decoding without `fatal` turns every byte that is not UTF-8 into U+FFFD: a Latin-1
 * `é` in a SQL string or a secret would be stored or compared as something else than what was
 * written, without a word.
 */
const strict = new TextDecoder('utf-8', { fatal: true });

/** `bytes` as text (a leading byte order mark dropped), or null when they are not UTF-8. */
export function decodeUtf8(bytes: Uint8Array): string | null {
  try {
    return strict.decode(bytes);
  } catch {
    return null;
  }
}

/**
 * Whether `s` is a string UTF-8 can carry as it is: no lone UTF-16 surrogate. UTF-8 turns each
 * lone one into U+FFFD, so `'\uD800'`, `'\uD801'` and `'\uFFFD'` would all be stored as the same
 * cache key, name, channel or lock (two lock keys acting as one). Names and keys that are not
 * are refused instead (HQL_INVALID_PARAMS). A one-byte string (every ASCII or Latin-1 key) is
 * answered without a scan.
 */
export function isWellFormed(s: string): boolean {
  return (s as unknown as { isWellFormed(): boolean }).isWellFormed();
}
