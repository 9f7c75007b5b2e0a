/**
 * Server-side AWS Signature Version 4 verification for the fake S3 (test/support/s3-server.ts),
 * written from AWS's specification ("Create a signed AWS API request", S3's "Authenticating
 * Requests: Using the Authorization Header"), not from the client's signer, so a signing bug in
 * the client cannot hide behind the same bug here. It is itself tested against
 * @smithy/signature-v4 (test/backup/s3-sigv4-verify.test.ts).
 */
import { createHash, createHmac, timingSafeEqual } from 'node:crypto';

export interface SignedRequest {
  method: string;
  /** The request target as sent: path and query, still percent-encoded. */
  rawTarget: string;
  /** Lowercase header names; repeated headers keep every value. */
  headers: Readonly<Record<string, readonly string[]>>;
  /** Hex SHA-256 of the body actually received. */
  bodySha256Hex: string;
}

export type VerifyResult =
  | { ok: true; accessKeyId: string }
  | { ok: false; status: number; code: string; message: string };

export interface VerifyOptions {
  region: string;
  /** The secret of an access key id, or undefined when the id is unknown. */
  secretOf(accessKeyId: string): string | undefined;
  nowMs: number;
  /** S3 refuses requests whose X-Amz-Date is further than 15 minutes from its clock. */
  skewMaxMs?: number;
}

const AUTH_RE =
  /^AWS4-HMAC-SHA256 Credential=([^/,\s]+)\/(\d{8})\/([^/,\s]+)\/([^/,\s]+)\/aws4_request,\s*SignedHeaders=([a-z0-9;-]+),\s*Signature=([0-9a-f]{64})$/;

export function verifySigV4(r: SignedRequest, o: VerifyOptions): VerifyResult {
  const auth = single(r.headers, 'authorization');
  if (auth === undefined) return refuse(403, 'AccessDenied', 'Anonymous access is not allowed');
  const m = AUTH_RE.exec(auth);
  if (m === null) return refuse(400, 'AuthorizationHeaderMalformed', 'The authorization header is malformed');
  const [, accessKeyId, scopeDate, region, service, signedHeadersText, signature] = m as unknown as string[];
  const secret = o.secretOf(accessKeyId as string);
  if (secret === undefined) {
    return refuse(
      403,
      'InvalidAccessKeyId',
      'The AWS Access Key Id you provided does not exist in our records.',
    );
  }
  if (region !== o.region || service !== 's3') {
    return refuse(
      400,
      'AuthorizationHeaderMalformed',
      `the region '${region}' is wrong; expecting '${o.region}'`,
    );
  }
  const signedHeaders = (signedHeadersText as string).split(';');
  const sorted = [...signedHeaders].sort();
  if (signedHeaders.join(';') !== sorted.join(';') || new Set(signedHeaders).size !== signedHeaders.length) {
    return refuse(400, 'AuthorizationHeaderMalformed', 'SignedHeaders must be sorted and unique');
  }
  for (const required of ['host', 'x-amz-date', 'x-amz-content-sha256']) {
    if (!signedHeaders.includes(required)) {
      return refuse(400, 'AuthorizationHeaderMalformed', `SignedHeaders must include ${required}`);
    }
  }
  const amzDate = single(r.headers, 'x-amz-date') ?? '';
  const dateMs = parseAmzDate(amzDate);
  if (dateMs === null || amzDate.slice(0, 8) !== scopeDate) {
    return refuse(
      400,
      'AuthorizationHeaderMalformed',
      'X-Amz-Date is missing, malformed or not the date of the scope',
    );
  }
  if (Math.abs(o.nowMs - dateMs) > (o.skewMaxMs ?? 15 * 60_000)) {
    return refuse(
      403,
      'RequestTimeTooSkewed',
      'The difference between the request time and the server time is too large.',
    );
  }
  const payloadHash = single(r.headers, 'x-amz-content-sha256') ?? '';
  if (payloadHash !== 'UNSIGNED-PAYLOAD' && !/^[0-9a-f]{64}$/.test(payloadHash)) {
    return refuse(
      400,
      'InvalidArgument',
      'x-amz-content-sha256 must be UNSIGNED-PAYLOAD or a SHA-256 hex digest',
    );
  }
  const canonical = canonicalRequest(r, signedHeaders, payloadHash);
  if (canonical === null) return refuse(400, 'InvalidURI', 'The request URI could not be decoded');
  const scope = `${scopeDate}/${region}/s3/aws4_request`;
  const stringToSign = ['AWS4-HMAC-SHA256', amzDate, scope, sha256Hex(canonical)].join('\n');
  const expected = hmac(signingKey(secret, scopeDate as string, region as string), stringToSign).toString(
    'hex',
  );
  if (!timingSafeEqual(Buffer.from(expected), Buffer.from(signature as string))) {
    return refuse(
      403,
      'SignatureDoesNotMatch',
      'The request signature we calculated does not match the signature you provided. Check your key and signing method.',
    );
  }
  // Checked after the signature, as S3 does: the header was signed, the body must match it.
  if (payloadHash !== 'UNSIGNED-PAYLOAD' && payloadHash !== r.bodySha256Hex) {
    return refuse(
      400,
      'XAmzContentSHA256Mismatch',
      "The provided 'x-amz-content-sha256' header does not match what was computed.",
    );
  }
  return { ok: true, accessKeyId: accessKeyId as string };
}

/** The canonical request of SigV4, or null when the target does not percent-decode. */
export function canonicalRequest(
  r: SignedRequest,
  signedHeaders: readonly string[],
  payloadHash: string,
): string | null {
  const q = r.rawTarget.indexOf('?');
  const rawPath = q < 0 ? r.rawTarget : r.rawTarget.slice(0, q);
  const rawQuery = q < 0 ? '' : r.rawTarget.slice(q + 1);
  try {
    // S3 signs each path byte URI-encoded once, whatever spelling the client sent.
    const path = rawPath
      .split('/')
      .map((s) => uriEncode(decodeURIComponent(s)))
      .join('/');
    const query = rawQuery
      .split('&')
      .filter((p) => p !== '')
      .map((p) => {
        const eq = p.indexOf('=');
        const k = eq < 0 ? p : p.slice(0, eq);
        const v = eq < 0 ? '' : p.slice(eq + 1);
        return [uriEncode(decodeURIComponent(k)), uriEncode(decodeURIComponent(v))] as const;
      })
      .filter(([k]) => k !== 'X-Amz-Signature')
      .sort(([k1, v1], [k2, v2]) => (k1 < k2 ? -1 : k1 > k2 ? 1 : v1 < v2 ? -1 : v1 > v2 ? 1 : 0))
      .map(([k, v]) => `${k}=${v}`)
      .join('&');
    const headers = signedHeaders
      .map((h) => `${h}:${(r.headers[h] ?? []).map((v) => v.trim().replace(/\s+/g, ' ')).join(',')}\n`)
      .join('');
    return [r.method, path, query, headers, signedHeaders.join(';'), payloadHash].join('\n');
  } catch {
    return null;
  }
}

/** URI-encode every byte except the unreserved characters A-Z a-z 0-9 - . _ ~ */
export function uriEncode(s: string): string {
  return encodeURIComponent(s).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
}

function signingKey(secret: string, date: string, region: string): Buffer {
  const kDate = hmac(`AWS4${secret}`, date);
  const kRegion = hmac(kDate, region);
  const kService = hmac(kRegion, 's3');
  return hmac(kService, 'aws4_request');
}

function hmac(key: string | Buffer, data: string): Buffer {
  return createHmac('sha256', key).update(data, 'utf8').digest();
}

function sha256Hex(s: string): string {
  return createHash('sha256').update(s, 'utf8').digest('hex');
}

function parseAmzDate(s: string): number | null {
  const m = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/.exec(s);
  if (m === null) return null;
  const [, y, mo, d, h, mi, se] = m.map(Number) as number[];
  return Date.UTC(y as number, (mo as number) - 1, d, h, mi, se);
}

function single(headers: SignedRequest['headers'], name: string): string | undefined {
  const values = headers[name];
  return values === undefined || values.length !== 1 ? undefined : values[0];
}

function refuse(status: number, code: string, message: string): VerifyResult {
  return { ok: false, status, code, message };
}
