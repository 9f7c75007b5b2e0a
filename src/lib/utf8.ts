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
