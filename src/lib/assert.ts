/**
 * Invariant checks that stay on in production (TigerBeetle style). A failed assertion is a
 * programmer error: the process must not continue with corrupted state. Operating errors
 * (peer gone, constraint violation) are typed values, never assertions.
 */
export class AssertionError extends Error {
  override readonly name = 'AssertionError';
}

export function assert(condition: unknown, message: string): asserts condition {
  if (!condition) throw new AssertionError(`assertion failed: ${message}`);
}

export function assertNever(value: never, what = 'value'): never {
  throw new AssertionError(`unexpected ${what}: ${JSON.stringify(value)}`);
}
