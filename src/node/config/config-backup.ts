/**
 * The backup settings of a node configuration: the schedule (`backup_cron`), the encryption keys
 * (`enc_keys`, `enc_key_active`, as in the Rust project) and the S3 target (`s3_*`). Retention
 * (`backup_keep_days`, `backup_keep_days_local`) is an integer setting of config-keys.ts.
 *
 * No message here ever contains a key or the S3 secret: messages end up in logs.
 */
import { isIP } from 'node:net';
import { Cron } from 'croner';
import { assert } from '../../lib/assert.js';
import { type ConfigProblems, describeValue } from './config-errors.js';
import { INTEGER_SETTINGS } from './config-keys.js';

/** croner syntax: seconds, minutes, hours, day of month, month, day of week (a 7th field, the year, is allowed). */
export const BACKUP_CRON_DEFAULT = '0 30 2 * * *';
/** Bytes of one encryption key (AES-256). */
export const ENC_KEY_BYTES = 32;
/** Key ids as in the Rust project (cryptr): 2 to 20 ASCII letters and digits. */
export const ENC_KEY_ID_RE = /^[a-zA-Z0-9]{2,20}$/;
/** Keys one configuration may list (old keys are kept after a rotation to read old backups). */
export const ENC_KEYS_MAX = 100;

export interface ResolvedS3Config {
  /** The endpoint, `https://s3.example.com` (no bucket, no path). */
  readonly url: string;
  readonly bucket: string;
  readonly region: string;
  /** `https://host/bucket/key` (true) or `https://bucket.host/key` (false). */
  readonly pathStyle: boolean;
  /** The access key id. */
  readonly key: string;
  readonly secret: string;
  /** `s3_request_timeout_ms`: one request's deadline. */
  readonly requestTimeoutMs: number;
  /** `s3_retry_deadline_ms`: no retry starts after this long since a request's first attempt. */
  readonly retryDeadlineMs: number;
  /** `s3_prefix`: the folder of the bucket the backups go in ('' for the top). */
  readonly prefix: string;
}

export interface ResolvedBackupConfig {
  /** When scheduled backups run (croner, local time); the leader runs them. */
  readonly cron: string;
  /** Key id → 32 key bytes; empty when `enc_keys` is not set (then no backup can be made or read). */
  readonly encKeys: ReadonlyMap<string, Uint8Array>;
  /** The id of the key new backups are encrypted with; null without `enc_keys`. */
  readonly encKeyActive: string | null;
  /** Null when `s3_url` is not set. */
  readonly s3: ResolvedS3Config | null;
}

/** Records every problem of the backup keys of `input`; the resolved settings when there are none. */
export function checkBackupConfig(
  input: Record<string, unknown>,
  problems: ConfigProblems,
): ResolvedBackupConfig | null {
  const before = problems.count;
  const cron = checkCron(input.backupCron, gapMinSOf(input.backupCronGapMinS), problems);
  const encKeys = checkEncKeys(input.encKeys, problems);
  const encKeyActive = checkActiveKey(input.encKeyActive, encKeys, problems);
  const s3 = checkS3(input, problems);
  if (s3 !== null && s3 !== undefined && encKeys !== null && encKeys.size === 0 && !problems.has('encKeys')) {
    problems.add(
      'encKeys',
      `is required with ${problems.name('s3Url')}: backups are encrypted before upload`,
    );
  }
  if (problems.count > before || encKeys === null || encKeyActive === undefined || s3 === undefined)
    return null;
  return { cron, encKeys, encKeyActive, s3 };
}

/** Runs of a schedule looked at for its shortest gap: a dense burst shows within its first ones. */
const CRON_RUNS_CHECKED = 64;

/** An integer setting as given when it is one in range (config-keys.ts reports it otherwise), else its default. */
function integerOf(value: unknown, key: string): number {
  const spec = INTEGER_SETTINGS.find((k) => k.key === key);
  assert(spec !== undefined, `${key} is an integer setting`);
  return typeof value === 'number' && Number.isSafeInteger(value) && value >= spec.min && value <= spec.max
    ? value
    : spec.default;
}

/** The gap setting as given when it is one (config-keys.ts checks and reports it), else its default. */
function gapMinSOf(value: unknown): number {
  const spec = INTEGER_SETTINGS.find((k) => k.key === 'backupCronGapMinS');
  assert(spec !== undefined, 'backupCronGapMinS is an integer setting');
  return Number.isSafeInteger(value) && (value as number) >= spec.min && (value as number) <= spec.max
    ? (value as number)
    : spec.default;
}

function checkCron(value: unknown, gapMinS: number, problems: ConfigProblems): string {
  if (value === undefined) return BACKUP_CRON_DEFAULT;
  if (typeof value !== 'string' || value.trim().length === 0) {
    problems.add(
      'backupCron',
      `must be a cron pattern such as "${BACKUP_CRON_DEFAULT}", got ${describeValue(value)}`,
    );
    return BACKUP_CRON_DEFAULT;
  }
  let cron: Cron;
  try {
    cron = new Cron(value, { paused: true });
  } catch (e) {
    problems.add('backupCron', `${describeValue(value)} is not a cron pattern: ${(e as Error).message}`);
    return value;
  }
  // A pattern no date matches (February 31st, a year gone by) parses, and no backup would ever
  // be scheduled, without a word.
  const runs = cron.nextRuns(CRON_RUNS_CHECKED);
  cron.stop();
  if (runs.length === 0) {
    problems.add(
      'backupCron',
      `${describeValue(value)} matches no date from now on: no backup would ever run`,
    );
    return value;
  }
  // Every backup is a whole copy of the database, kept for backup_keep_days: a schedule that
  // fires every second fills the disk.
  for (let i = 1; i < runs.length; i++) {
    const gapMs = (runs[i] as Date).getTime() - (runs[i - 1] as Date).getTime();
    if (gapMs < gapMinS * 1000) {
      problems.add(
        'backupCron',
        `${describeValue(value)} runs ${gapMs / 1000} s apart (at ${(runs[i - 1] as Date).toISOString()} and ${(runs[i] as Date).toISOString()}), closer than ${problems.name('backupCronGapMinS')} = ${gapMinS} s: every backup is a whole copy of the database`,
      );
      break;
    }
  }
  return value;
}

/** null: a problem was recorded. */
function checkEncKeys(value: unknown, problems: ConfigProblems): Map<string, Uint8Array> | null {
  const keys = new Map<string, Uint8Array>();
  if (value === undefined) return keys;
  if (!Array.isArray(value)) {
    problems.add('encKeys', 'must be a list of "<id>/<base64 of 32 bytes>" strings');
    return null;
  }
  if (value.length > ENC_KEYS_MAX) {
    problems.add('encKeys', `lists ${value.length} keys, at most ${ENC_KEYS_MAX} are supported`);
    return null;
  }
  let ok = true;
  for (let i = 0; i < value.length; i++) {
    const entry: unknown = value[i];
    const path = `encKeys[${i}]`;
    const slash = typeof entry === 'string' ? entry.indexOf('/') : -1;
    if (typeof entry !== 'string' || slash < 0) {
      problems.add(path, 'must be "<id>/<base64 of 32 bytes>"');
      ok = false;
      continue;
    }
    if (isKeyBytes(entry.trim())) {
      // A key without its id: base64 holds '/', so the text before one is key material, never
      // to be quoted as if it were an id.
      problems.add(path, 'has no key id: write "<id>/<base64 of 32 bytes>", e.g. "k1/…"');
      ok = false;
      continue;
    }
    const id = entry.slice(0, slash);
    const b64 = entry.slice(slash + 1).trim();
    if (!ENC_KEY_ID_RE.test(id)) {
      problems.add(path, `key id ${quoteShort(id)} must be 2 to 20 letters and digits`);
      ok = false;
      continue;
    }
    const bytes = /^[A-Za-z0-9+/]+={0,2}$/.test(b64) ? Buffer.from(b64, 'base64') : Buffer.alloc(0);
    if (bytes.length !== ENC_KEY_BYTES) {
      problems.add(path, `key '${id}' must be the base64 of ${ENC_KEY_BYTES} random bytes`);
      ok = false;
      continue;
    }
    if (keys.has(id)) {
      problems.add(path, `key id '${id}' is listed twice`);
      ok = false;
      continue;
    }
    keys.set(id, new Uint8Array(bytes));
  }
  return ok ? keys : null;
}

/** Whether `text` is the base64 of a whole key (an entry of enc_keys that lacks its id). */
function isKeyBytes(text: string): boolean {
  return /^[A-Za-z0-9+/]+={0,2}$/.test(text) && Buffer.from(text, 'base64').length === ENC_KEY_BYTES;
}

/**
 * A value that should have been a key id, quoted only when it is short enough to be one: a longer
 * one may be key material written in the wrong place, and messages end up in logs.
 */
function quoteShort(text: string): string {
  return text.length <= 20 ? describeValue(text) : `a string of ${text.length} characters (not shown)`;
}

/** undefined: a problem was recorded. */
function checkActiveKey(
  value: unknown,
  keys: ReadonlyMap<string, Uint8Array> | null,
  problems: ConfigProblems,
): string | null | undefined {
  if (value === undefined) {
    if (keys !== null && keys.size > 0) {
      problems.add(
        'encKeyActive',
        `is required with ${problems.name('encKeys')}: the id of the key new backups use`,
      );
      return undefined;
    }
    return null;
  }
  if (typeof value !== 'string' || !ENC_KEY_ID_RE.test(value)) {
    // A key (or a whole "<id>/<key>" entry) written here by mistake is not quoted.
    const got = typeof value === 'string' ? quoteShort(value) : describeValue(value);
    problems.add('encKeyActive', `must be a key id of ${problems.name('encKeys')}, got ${got}`);
    return undefined;
  }
  if (keys !== null && !keys.has(value)) {
    const known = [...keys.keys()].join(', ') || 'none';
    problems.add('encKeyActive', `'${value}' is not an id of ${problems.name('encKeys')} (ids: ${known})`);
    return undefined;
  }
  return value;
}

const S3_STRINGS = ['s3Bucket', 's3Region', 's3Key', 's3Secret'] as const;

/** null: no S3 target; undefined: a problem was recorded. */
function checkS3(
  input: Record<string, unknown>,
  problems: ConfigProblems,
): ResolvedS3Config | null | undefined {
  const url = input.s3Url;
  const others = [...S3_STRINGS, 's3PathStyle', 's3Prefix'] as const;
  if (url === undefined) {
    const set = others.filter((k) => input[k] !== undefined);
    if (set.length === 0) return null;
    for (const k of set)
      problems.add(k, `is set but ${problems.name('s3Url')} is not: set it too, or remove this`);
    return undefined;
  }
  let ok = true;
  if (typeof url === 'string' && /^[a-z]+:\/\/[^/]*@/i.test(url)) {
    // `http://key:secret@host`: fetch refuses such a URL, and every S3 error quoted it. Not echoed.
    problems.add(
      's3Url',
      `must not hold credentials (user:password@): give them as ${problems.name('s3Key')} and ${problems.name('s3Secret')}`,
    );
    ok = false;
  } else if (typeof url !== 'string' || !/^https?:\/\/[^/\s]+\/?$/.test(url)) {
    problems.add(
      's3Url',
      `must be an http(s) endpoint without a path, like "https://s3.example.com", got ${describeValue(url)}`,
    );
    ok = false;
  }
  const strings: Partial<Record<(typeof S3_STRINGS)[number], string>> = {};
  for (const k of S3_STRINGS) {
    const v = input[k];
    if (typeof v === 'string' && v.length > 0 && v.length <= 1024) strings[k] = v;
    else {
      const got = k === 's3Secret' || v === undefined ? '' : `, got ${describeValue(v)}`;
      problems.add(k, `is required with ${problems.name('s3Url')}: a non-empty string${got}`);
      ok = false;
    }
  }
  const pathStyle = input.s3PathStyle;
  if (pathStyle !== undefined && typeof pathStyle !== 'boolean') {
    problems.add('s3PathStyle', `must be true or false, got ${describeValue(pathStyle)}`);
    ok = false;
  }
  const bucketProblem =
    strings.s3Bucket === undefined
      ? null
      : bucketNameProblem(strings.s3Bucket, pathStyle !== false, problems.name('s3PathStyle'));
  if (bucketProblem !== null) {
    problems.add('s3Bucket', `${describeValue(strings.s3Bucket)} ${bucketProblem}`);
    ok = false;
  }
  const prefix = input.s3Prefix ?? '';
  const prefixProblem =
    typeof prefix === 'string' ? s3PrefixProblem(prefix) : `must be a string, got ${describeValue(prefix)}`;
  if (prefixProblem !== null) {
    problems.add('s3Prefix', prefixProblem);
    ok = false;
  }
  const addressing = ok ? virtualHostProblem(url as string, pathStyle !== false) : null;
  if (addressing !== null) {
    problems.add('s3PathStyle', `false ${addressing}`);
    ok = false;
  }
  if (!ok) return undefined;
  return {
    url: (url as string).replace(/\/$/, ''),
    bucket: strings.s3Bucket as string,
    region: strings.s3Region as string,
    pathStyle: (pathStyle as boolean | undefined) ?? true,
    key: strings.s3Key as string,
    secret: strings.s3Secret as string,
    requestTimeoutMs: integerOf(input.s3RequestTimeoutMs, 's3RequestTimeoutMs'),
    retryDeadlineMs: integerOf(input.s3RetryDeadlineMs, 's3RetryDeadlineMs'),
    prefix: prefix as string,
  };
}

/**
 * Why `name` cannot be a bucket, or null. S3's rules: 3 to 63 lowercase letters, digits, dots and
 * hyphens, a letter or digit at each end; in the host name (`s3_path_style = false`) nothing
 * else works. In the path, older buckets (and some S3-compatible servers) also have capitals and
 * underscores, up to 255 characters; a `/`, `?`, `#` or space would change the request's path.
 */
export function bucketNameProblem(name: string, pathStyle: boolean, pathStyleKey: string): string | null {
  if (pathStyle) {
    return /^[A-Za-z0-9._-]{3,255}$/.test(name)
      ? null
      : 'is not a bucket name: 3 to 255 letters, digits, dots, hyphens and underscores (S3 today: 3 to 63, lowercase)';
  }
  return /^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/.test(name)
    ? null
    : `is not a bucket name that can be part of a host name (${pathStyleKey} = false): 3 to 63 lowercase letters, digits, dots and hyphens, a letter or digit at each end`;
}

/**
 * Why the endpoint `url` cannot take virtual-hosted requests (`<bucket>.<host>`), or null: an IP
 * address has no subdomains (the URL kept its host as it was, and every request went out without
 * its bucket: a listing of `/`, a backup PUT as a bucket of its own; found by an outside probe).
 */
export function virtualHostProblem(url: string, pathStyle: boolean): string | null {
  if (pathStyle) return null;
  let host: string;
  try {
    host = new URL(url).hostname;
  } catch {
    return null; // the URL's own problem is said for s3_url
  }
  return isIP(host.replace(/^\[|\]$/g, '')) === 0
    ? null
    : `cannot be used with an IP address in the endpoint (${host}): a bucket is addressed as <bucket>.<host>; set it true (path-style, <endpoint>/<bucket>) or give a host name`;
}

/**
 * Why `prefix` cannot be `s3_prefix`, or null: a folder name of letters, digits and `._-`
 * segments, each ending in `/` (`cluster-a/`, `prod/backups/`), at most 256 characters; ''
 * for the bucket's top.
 */
function s3PrefixProblem(prefix: string): string | null {
  if (prefix === '') return null;
  return prefix.length <= 256 && /^([A-Za-z0-9_-][A-Za-z0-9._-]*\/)+$/.test(prefix)
    ? null
    : `${describeValue(prefix)} is not a folder of the bucket: segments of letters, digits, '.', '-' and '_', each ending in '/' (like "cluster-a/"), at most 256 characters`;
}
