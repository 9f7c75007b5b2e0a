/**
 * What named parameters may be, checked alike by every client before a call leaves
 * (client/args.ts) and by the command decoder for writes (sm/sql/command.ts): a plain object
 * whose keys are parameter names (`name`, or with its prefix `:name`, `@name`, `$name`). A read
 * and a write given the same object get the same answer (found from outside: a Map or an empty
 * key was "an array or a map" or "invalid parameter name" for a write, and "Missing named
 * parameter" for a read).
 */

const NAME = /^[:@$]?[\p{L}\p{N}_$]+$/u;

/** Whether `v` is a plain object (its prototype Object.prototype or null). */
export function isPlainObject(v: unknown): v is Record<string, unknown> {
  if (typeof v !== 'object' || v === null) return false;
  const proto = Object.getPrototypeOf(v);
  return proto === Object.prototype || proto === null;
}

/**
 * Why `v` cannot be named parameters, or null. `v` is not an array. (`__proto__` is a name here:
 * a read binds it; a write refuses it with its own message, sm/sql/command.ts.)
 */
export function namedParamsProblem(v: unknown): string | null {
  if (!isPlainObject(v)) {
    const kind =
      v instanceof Map
        ? 'a Map (pass Object.fromEntries(map))'
        : typeof v === 'object' && v !== null
          ? (v.constructor?.name ?? 'an object')
          : typeof v;
    return `params must be an array (positional) or a plain object (named), got ${kind}`;
  }
  for (const key of Object.keys(v)) {
    if (!NAME.test(key))
      return `invalid parameter name ${JSON.stringify(key.length > 64 ? `${key.slice(0, 64)}…` : key)}`;
  }
  return null;
}
