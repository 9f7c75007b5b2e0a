/**
 * Fields of HTTP requests that several routes read the same way (the API port's JSON and cache
 * routes, the dashboard): one check, one message, so no route reads a misspelled value as the
 * default in silence.
 */
import { closestKey } from '../lib/closest-key.js';
import { HiqliteError } from '../lib/errors.js';

export type ReadConsistency = 'local' | 'linearizable';

/** A read's consistency as a request spells it (a JSON field, a query parameter). */
export function consistencyOf(value: unknown, where: string): ReadConsistency {
  if (value === 'local' || value === 'linearizable') return value;
  throw invalidField(`${where} must be "local" or "linearizable", got ${describeValue(value)}`);
}

/** An optional JSON boolean: absent or null is false; anything but true or false is refused. */
export function optionalBoolean(value: unknown, where: string): boolean {
  if (value === undefined || value === null) return false;
  if (typeof value === 'boolean') return value;
  throw invalidField(`${where} must be true or false, got ${describeValue(value)}`);
}

/** Refuses a field `allowed` does not name: a misspelled field would otherwise be ignored. */
export function onlyFields(body: Record<string, unknown>, allowed: readonly string[], route: string): void {
  for (const name of Object.keys(body)) {
    if (!allowed.includes(name))
      throw invalidField(
        `unknown field ${describeValue(name)}${hint(name, allowed)}: ${route} takes ${allowed.length === 0 ? 'none' : allowed.join(', ')}`,
      );
  }
}

/**
 * Refuses a query parameter `allowed` does not name, and one given twice: a misspelled or
 * repeated one would otherwise be ignored, or read as its first value, in silence.
 */
export function onlyParams(params: URLSearchParams, allowed: readonly string[]): void {
  for (const name of new Set(params.keys())) {
    if (!allowed.includes(name))
      throw invalidField(
        `unknown query parameter ${describeValue(name)}${hint(name, allowed)}: this route takes ${allowed.length === 0 ? 'none' : allowed.join(', ')}`,
      );
    if (params.getAll(name).length > 1) throw invalidField(`the query parameter ${name} is given twice`);
  }
}

/** ` (did you mean "x"?)` when a known name is within two edits, else nothing. */
export function hint(name: string, known: readonly string[]): string {
  const guess = closestKey(name, known);
  return guess === null ? '' : ` (did you mean ${JSON.stringify(guess)}?)`;
}

/** A short rendering of a refused value for a message (never the whole of a large one). */
export function describeValue(value: unknown): string {
  let text: string;
  try {
    text = JSON.stringify(value) ?? String(value);
  } catch {
    text = String(value);
  }
  return text.length > 64 ? `${text.slice(0, 64)}…` : text;
}

function invalidField(message: string): HiqliteError {
  return new HiqliteError('HQL_INVALID_PARAMS', message, { retryable: false });
}
