/**
 * HTTP plumbing of the dashboard: the security headers every answer carries, the session cookie,
 * and JSON answers (bodies are read by http/http-body.ts, as on the rest of the port).
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { sendError as sendErrorAnswer, sendJson as sendJsonAnswer } from '../http/http-body.js';
import type { ErrorCode } from '../lib/errors.js';
import type { ApiAnswer } from './api-types.js';

/**
 * Scripts and styles only from this origin (no inline script, no eval), data only from this
 * origin, never framed. The page needs nothing else.
 */
export const CONTENT_SECURITY_POLICY = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "connect-src 'self'",
  "base-uri 'none'",
  "form-action 'self'",
  "frame-ancestors 'none'",
].join('; ');

/** Headers on every dashboard answer, whatever its status. */
export const SECURITY_HEADERS: Readonly<Record<string, string>> = {
  'content-security-policy': CONTENT_SECURITY_POLICY,
  'x-content-type-options': 'nosniff',
  'x-frame-options': 'DENY',
  'referrer-policy': 'no-referrer',
  'cross-origin-opener-policy': 'same-origin',
  'cross-origin-resource-policy': 'same-origin',
};

export interface CookieOptions {
  /** `insecure_cookie`: no `__Host-` prefix and no `Secure`, for plain HTTP outside localhost. */
  readonly insecure: boolean;
}

export function cookieName(o: CookieOptions): string {
  return o.insecure ? 'hiqlite-session' : '__Host-hiqlite-session';
}

/** `Set-Cookie` for a session token (a browser-session cookie: the node decides when it ends). */
export function sessionCookie(o: CookieOptions, token: string): string {
  return [
    `${cookieName(o)}=${token}`,
    'Path=/',
    'HttpOnly',
    'SameSite=Strict',
    ...(o.insecure ? [] : ['Secure']),
  ].join('; ');
}

/** `Set-Cookie` that removes the session cookie. */
export function clearedCookie(o: CookieOptions): string {
  return [
    `${cookieName(o)}=`,
    'Path=/',
    'Max-Age=0',
    'HttpOnly',
    'SameSite=Strict',
    ...(o.insecure ? [] : ['Secure']),
  ].join('; ');
}

/** The session token of the request's `Cookie` header, or null. */
export function readCookie(req: IncomingMessage, o: CookieOptions): string | null {
  const header = req.headers.cookie;
  if (typeof header !== 'string' || header.length > 8192) return null;
  const name = cookieName(o);
  for (const part of header.split(';')) {
    const eq = part.indexOf('=');
    if (eq < 0) continue;
    if (part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim();
  }
  return null;
}

/** A JSON answer with the dashboard's headers (the shared sendJson of http/http-body.ts). */
export function sendJson<T>(
  res: ServerResponse,
  status: number,
  body: ApiAnswer<T>,
  headers: Record<string, string | string[]> = {},
): void {
  sendJsonAnswer(res, status, body, { ...SECURITY_HEADERS, 'cache-control': 'no-store', ...headers });
}

/** An error answer with the dashboard's headers; retryable for 429 and 503. */
export function sendError(
  res: ServerResponse,
  status: number,
  code: ErrorCode,
  message: string,
  headers: Record<string, string | string[]> = {},
): void {
  sendErrorAnswer(res, status, code, message, {
    headers: { ...SECURITY_HEADERS, 'cache-control': 'no-store', ...headers },
  });
}

/**
 * Whether a request may come from another site: browsers send `Sec-Fetch-Site` and `Origin`;
 * either naming another site refuses the request (with the cookie being SameSite=Strict and the
 * CSRF token checked, this is the third line).
 */
export function crossSite(req: IncomingMessage): boolean {
  const site = req.headers['sec-fetch-site'];
  if (site === 'cross-site' || site === 'same-site') return true;
  const origin = req.headers.origin;
  if (typeof origin !== 'string' || origin === 'null') return origin === 'null';
  let host: string;
  try {
    host = new URL(origin).host;
  } catch {
    return true;
  }
  return host !== req.headers.host;
}
