/** Branded scalars: a term can never be passed where a log index is expected. */
declare const brand: unique symbol;
export type Brand<T, B extends string> = T & { readonly [brand]: B };
