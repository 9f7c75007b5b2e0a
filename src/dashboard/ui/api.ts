/**
 * The page's calls to `/dashboard/api/…`: JSON in and out, the session's CSRF token on every
 * POST, and a 401 anywhere sends the page back to the login form.
 */
import type { ApiAnswer, ApiFailure } from '../api-types.js';

let csrfToken = '';
let onUnauthorized: () => void = () => {};

export function setCsrfToken(token: string): void {
  csrfToken = token;
}

export function setOnUnauthorized(f: () => void): void {
  onUnauthorized = f;
}

export class ApiError extends Error {
  constructor(
    readonly failure: ApiFailure,
    readonly status: number,
  ) {
    super(failure.message);
  }
}

export async function api<T>(method: 'GET' | 'POST', path: string, body?: unknown): Promise<T> {
  const init: RequestInit = {
    method,
    credentials: 'same-origin',
    cache: 'no-store',
    headers: method === 'POST' ? { 'content-type': 'application/json', 'x-csrf-token': csrfToken } : {},
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  };
  let res: Response;
  try {
    res = await fetch(`/dashboard/api/${path}`, init);
  } catch (e) {
    throw new ApiError(
      { code: 'HQL_UNREACHABLE', message: `the node did not answer: ${String(e)}`, retryable: true },
      0,
    );
  }
  let answer: ApiAnswer<T>;
  try {
    answer = (await res.json()) as ApiAnswer<T>;
  } catch {
    throw new ApiError(
      { code: 'HQL_PROTOCOL', message: `HTTP ${res.status} without JSON`, retryable: false },
      res.status,
    );
  }
  if (answer.ok) return answer.value;
  if (res.status === 401 && path !== 'login') onUnauthorized();
  throw new ApiError(answer.error, res.status);
}

/** `code: message` of any error, for the page. */
export function describeError(e: unknown): { code: string; message: string } {
  if (e instanceof ApiError) return { code: e.failure.code, message: e.failure.message };
  return { code: 'ERROR', message: e instanceof Error ? e.message : String(e) };
}
