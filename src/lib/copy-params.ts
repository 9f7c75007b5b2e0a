/**
 * The caller's SQL parameters as they are at the call, for a call that leaves later (at the end
 * of the turn for the node's thread, after a queue for a read thread, after a connection for a
 * remote read): a caller that reuses its array or Buffer meanwhile changes nothing.
 *
 * One copy for every path (found from outside: a Proxy around a parameter array was taken by
 * `execute` and by a local read, and refused by a read with `timeoutMs` and by the remote
 * client's read, which used `structuredClone`, which refuses a Proxy). An array (a Proxy or a
 * subclass too) and a plain object are copied element by element, primitives as they are, byte
 * arrays into a buffer of their own size (a Buffer from Node's pool would carry the whole pool),
 * anything else by `structuredClone`, which throws a DataCloneError for what cannot cross (a
 * function, a symbol). What is not a parameter (a nested object, undefined) is copied as it is
 * and refused where parameters are checked.
 */
export function copyParams<P>(params: P): P {
  if (Array.isArray(params)) {
    const out: unknown[] = new Array(params.length);
    for (let i = 0; i < params.length; i++) out[i] = copyValue(params[i]);
    return out as P;
  }
  if (typeof params === 'object' && params !== null && !ArrayBuffer.isView(params)) {
    const out: Record<string, unknown> = {};
    for (const key of Object.keys(params)) {
      const v = copyValue((params as Record<string, unknown>)[key]);
      // A key `__proto__` stays a key (an assignment would set the prototype).
      Object.defineProperty(out, key, { value: v, enumerable: true, writable: true, configurable: true });
    }
    return out as P;
  }
  return structuredClone(params);
}

function copyValue(v: unknown): unknown {
  switch (typeof v) {
    case 'string':
    case 'number':
    case 'bigint':
    case 'boolean':
    case 'undefined':
      return v;
    case 'object':
      if (v === null) return null;
      if (v instanceof Uint8Array) return new Uint8Array(v);
      return structuredClone(v);
    default:
      return structuredClone(v); // a symbol or a function: DataCloneError
  }
}
