/**
 * The options of the two entry points, `connect(options)` and `start(config, options)`, checked
 * before anything is opened: every problem at once as HQL_INVALID_CONFIG (ConfigError), like a
 * node's configuration. Before, a misspelled key was ignored (`connect({ secret })` for
 * `secretApi` tried to connect without one; `start(cfg, { thred: 'main' })` ran the node on its
 * own thread) and a wrong value surfaced later, elsewhere (a string for `nodes` was read
 * character by character, a timeout beyond 2^31 ms fired at once).
 */

import { ConfigProblems, camelCaseNamer, closestKey } from '../node/config/config-errors.js';
import { SECRET_CHARS_MIN } from '../node/config/config-keys.js';
import type { StartOptions } from '../node/hiqlite-node.js';
import { PEM_FILE_BYTES_MAX, readFileBounded } from '../transport/bounded-file.js';
import { caFileProblem } from '../transport/tls-material.js';
import { TIMEOUT_MS_MAX } from './args.js';
import type { ConnectOptions } from './remote.js';

/** The longest delay a Node.js timer keeps (longer ones fire at once). */

const CONNECT_KEYS = [
  'nodes',
  'secretApi',
  'tls',
  'requestTimeoutMs',
  'connectTimeoutMs',
  'writesMax',
  'listenBufferMax',
  'listenBufferBytesMax',
  'listenResumeTimeoutMs',
  'keepaliveIntervalMs',
  'keepaliveTimeoutMs',
] as const satisfies readonly (keyof ConnectOptions)[];

const START_KEYS = [
  'logger',
  'clock',
  'joinTimeoutMs',
  'signal',
  'onFatal',
  'thread',
  'threadCallsMax',
  'cacheMirror',
  'cacheMirrorInflightBytesMax',
] as const satisfies readonly (keyof StartOptions)[];

// Every key of the interfaces is listed (a key added there and not here fails to compile).
const connectKeysComplete: Exclude<keyof ConnectOptions, (typeof CONNECT_KEYS)[number]> extends never
  ? true
  : false = true;
const startKeysComplete: Exclude<keyof StartOptions, (typeof START_KEYS)[number]> extends never
  ? true
  : false = true;
void connectKeysComplete;
void startKeysComplete;

export function checkConnectOptions(o: unknown): asserts o is ConnectOptions {
  const problems = new ConfigProblems(camelCaseNamer, 'connect() options');
  knownObject(o, CONNECT_KEYS, 'an object { nodes, secretApi, … }', problems);
  const nodes = o.nodes;
  if (!Array.isArray(nodes) || nodes.length === 0)
    problems.add('nodes', 'must be a non-empty array of API addresses ("host:port")');
  else
    for (let i = 0; i < nodes.length; i++) {
      const n: unknown = nodes[i]; // a hole too (forEach skips holes)
      if (typeof n !== 'string' || n.trim() === '')
        problems.add(`nodes[${i}]`, 'must be an address "host:port"');
    }
  if (typeof o.secretApi !== 'string' || o.secretApi === '')
    problems.add('secretApi', "must be the nodes' secret_api (a non-empty string)");
  // No node takes a shorter one (config-resolve.ts): said here, not as a refusal by every node.
  else if ([...o.secretApi].length < SECRET_CHARS_MIN)
    problems.add(
      'secretApi',
      `must be the nodes' secret_api, which has at least ${SECRET_CHARS_MIN} characters; this has ${[...o.secretApi].length}`,
    );
  const tls = o.tls;
  if (
    tls !== undefined &&
    typeof tls !== 'boolean' &&
    !(isObject(tls) && typeof tls.caFile === 'string' && Object.keys(tls).every((k) => k === 'caFile'))
  )
    problems.add('tls', 'must be true, false or { caFile: "<path>" }');
  else if (isObject(tls)) {
    let pem: string | null = null;
    try {
      pem = readFileBounded(tls.caFile as string, PEM_FILE_BYTES_MAX).toString('utf8');
    } catch (e) {
      problems.add('tls.caFile', `cannot be read: ${e instanceof Error ? e.message : String(e)}`);
    }
    const problem = pem === null ? null : caFileProblem(pem);
    if (problem !== null) problems.add('tls.caFile', `${tls.caFile as string}: ${problem}`);
  }
  integer(o, 'requestTimeoutMs', 1, TIMEOUT_MS_MAX, problems);
  integer(o, 'connectTimeoutMs', 1, TIMEOUT_MS_MAX, problems);
  integer(o, 'listenResumeTimeoutMs', 0, TIMEOUT_MS_MAX, problems);
  integer(o, 'keepaliveIntervalMs', 0, TIMEOUT_MS_MAX, problems);
  integer(o, 'keepaliveTimeoutMs', 1, TIMEOUT_MS_MAX, problems);
  integer(o, 'writesMax', 1, 1_000_000, problems);
  integer(o, 'listenBufferMax', 1, 10_000_000, problems);
  integer(o, 'listenBufferBytesMax', 1, 2 ** 40, problems);
  problems.throwIfAny();
}

export function checkStartOptions(o: unknown): asserts o is StartOptions {
  const problems = new ConfigProblems(camelCaseNamer, 'start() options');
  knownObject(o, START_KEYS, "an object, e.g. { thread: 'main' }", problems);
  if (o.thread !== undefined && o.thread !== 'worker' && o.thread !== 'main')
    problems.add('thread', `must be 'worker' or 'main', got ${JSON.stringify(o.thread) ?? String(o.thread)}`);
  if (o.signal !== undefined && !(o.signal instanceof AbortSignal))
    problems.add('signal', 'must be an AbortSignal');
  if (o.onFatal !== undefined && typeof o.onFatal !== 'function')
    problems.add('onFatal', 'must be a function');
  if (o.cacheMirror !== undefined && typeof o.cacheMirror !== 'boolean')
    problems.add('cacheMirror', 'must be true or false');
  if (o.logger !== undefined && !isObject(o.logger)) problems.add('logger', 'must be a pino-style logger');
  integer(o, 'joinTimeoutMs', 1, TIMEOUT_MS_MAX, problems);
  problems.throwIfAny();
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Throws when `o` is not an object; records a problem for each key `known` does not name. */
function knownObject(
  o: unknown,
  known: readonly string[],
  shape: string,
  problems: ConfigProblems,
): asserts o is Record<string, unknown> {
  if (!isObject(o)) {
    problems.addNamed('options', `must be ${shape}`);
    problems.throwIfAny();
  }
  unknownKeys(o as Record<string, unknown>, known, problems);
}

function unknownKeys(o: Record<string, unknown>, known: readonly string[], problems: ConfigProblems): void {
  for (const key of Object.keys(o)) {
    if (known.includes(key)) continue;
    const guess = closestKey(key, known);
    problems.add(
      key,
      `unknown option${guess === null ? '' : ` (did you mean ${guess}?)`}; known: ${known.join(', ')}`,
    );
  }
}

function integer(
  o: Record<string, unknown>,
  key: string,
  min: number,
  max: number,
  problems: ConfigProblems,
): void {
  const v = o[key];
  if (v === undefined) return;
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < min || v > max)
    problems.add(key, `must be a whole number from ${min} to ${max}, got ${JSON.stringify(v) ?? String(v)}`);
}
