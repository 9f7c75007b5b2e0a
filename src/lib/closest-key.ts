/** "Did you mean" hints for misspelled keys: configuration, options, HTTP fields. */

/**
 * The closest of `candidates` within two edits of `word`, for "did you mean" hints; failing
 * that, the one candidate that begins with `word` or that `word` begins with (at least three
 * letters: `secret` for `secretApi`, `secretApiKey` for `secretApi`).
 */
export function closestKey(word: string, candidates: Iterable<string>): string | null {
  const lengthMax = 64; // bounds the quadratic distance computation
  if (word.length > lengthMax) return null;
  const w = word.toLowerCase();
  let best: string | null = null;
  let bestDistance = 3;
  const prefixed: string[] = [];
  for (const c of candidates) {
    if (c.length > lengthMax) continue;
    const lower = c.toLowerCase();
    const d = editDistance(w, lower);
    if (d < bestDistance) {
      best = c;
      bestDistance = d;
    }
    if (Math.min(w.length, lower.length) >= 3 && (lower.startsWith(w) || w.startsWith(lower)))
      prefixed.push(c);
  }
  return best ?? (prefixed.length === 1 ? prefixed[0]! : null);
}

function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++) {
      const substitution = (previous[j - 1] ?? 0) + (a[i - 1] === b[j - 1] ? 0 : 1);
      current.push(Math.min((previous[j] ?? 0) + 1, (current[j - 1] ?? 0) + 1, substitution));
    }
    previous = current;
  }
  return previous[b.length] ?? 0;
}
