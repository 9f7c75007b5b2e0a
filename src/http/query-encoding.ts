/**
 * Query strings as sent: `URLSearchParams` decodes percent-encoding that is not UTF-8 (`%E9`, a
 * Latin-1 `é`; a lone `%`) as U+FFFD without a word, so `/listen?channel=caf%E9` listened on
 * another channel than the client named. Routes that read query parameters refuse such a query.
 */

/** The first query parameter of `search` (`?a=b&c=d`) whose name or value is not valid percent-encoded UTF-8 (as sent, cut at 64 characters), or null. */
export function badlyEncodedQueryParam(search: string): string | null {
  const query = search.startsWith('?') ? search.slice(1) : search;
  if (query === '') return null;
  for (const part of query.split('&')) {
    const eq = part.indexOf('=');
    const name = eq < 0 ? part : part.slice(0, eq);
    const value = eq < 0 ? '' : part.slice(eq + 1);
    for (const raw of [name, value]) {
      try {
        decodeURIComponent(raw.replace(/\+/g, ' '));
      } catch {
        return name.slice(0, 64);
      }
    }
  }
  return null;
}
