/**
 * Loads a node configuration the way the Rust project does: table `[hiqlite]` of a TOML file,
 * snake_case keys, every key overridable by an `HQL_<KEY>` environment variable (the variable
 * wins). Problems name the TOML key, and the variable when the value came from one.
 *
 * Keys of Rust features this version lacks (s3_*, backup_*, enc_keys, …) are accepted with a
 * warning, so a Rust config loads; any other unknown key is an error (a typo must not silently
 * fall back to a default).
 */

import { statSync } from 'node:fs';
import { parse, TomlError } from 'smol-toml';
import { assertNever } from '../../lib/assert.js';
import { decodeUtf8 } from '../../lib/utf8.js';
import { FileTooLargeError, readFileBounded } from '../../transport/bounded-file.js';
import { isPlainTable, parseNodeEntry, parseNodeTable } from './config-address.js';
import { ConfigError, ConfigProblems, closestKey, describeValue } from './config-errors.js';
import { envName, RUST_ONLY_ENV, RUST_ONLY_KEYS, TOML_KEYS, type TomlKey } from './config-keys.js';
import { checkConfig } from './config-resolve.js';
import type { NodeConfig } from './config-types.js';

/** `process.env` or any map of variable names to values. An empty value counts as unset. */
export type Env = Readonly<Record<string, string | undefined>>;

export interface TomlConfigOptions {
  /** The table that holds the node's keys. Default `hiqlite`. */
  readonly table?: string;
}

export interface TomlConfigResult {
  readonly config: NodeConfig;
  /** One line each: ignored Rust-only keys and variables, unknown `HQL_*` variables, risky settings. */
  readonly warnings: readonly string[];
}

/**
 * Reads, validates and returns the config of `path`. Warnings go to `onWarning`, by default
 * `process.emitWarning`. Throws `ConfigError` (HQL_INVALID_CONFIG) listing every problem.
 */
export function loadTomlConfig(
  path: string,
  env: Env = process.env,
  options: TomlConfigOptions & { readonly onWarning?: (message: string) => void } = {},
): NodeConfig {
  const { config, warnings } = readTomlConfig(path, env, options);
  const warn = options.onWarning ?? ((m: string) => process.emitWarning(m, { code: 'HQL_CONFIG_WARNING' }));
  for (const w of warnings) warn(w);
  return config;
}

/** As loadTomlConfig, returning the warnings instead of emitting them. */
export function readTomlConfig(
  path: string,
  env: Env = process.env,
  options: TomlConfigOptions = {},
): TomlConfigResult {
  return parseTomlConfig(readConfigFile(path), env, { ...options, source: path });
}

/**
 * The most a config file may hold. A node's file is a few KiB (1,000 node entries and 100 keys
 * fit in a few hundred): anything near this is not a configuration, and reading without a bound
 * made `-c /dev/zero` (or `/dev/urandom`) fill memory, gigabytes a minute, until the process died.
 */
export const CONFIG_FILE_BYTES_MAX = 4 * 1024 * 1024;

/** The text of a config file; a ConfigError when it cannot be read or is over CONFIG_FILE_BYTES_MAX. */
export function readConfigFile(path: string): string {
  let bytes: Buffer;
  try {
    bytes = readFileBounded(path, CONFIG_FILE_BYTES_MAX);
  } catch (e) {
    if (e instanceof FileTooLargeError)
      throw new ConfigError(
        [{ key: path, message: `is larger than ${CONFIG_FILE_BYTES_MAX} bytes: not a configuration file` }],
        null,
      );
    const reason = e instanceof Error ? e.message : String(e);
    throw new ConfigError([{ key: path, message: `cannot read the config file: ${reason}` }], null);
  }
  if (bytes.length === 0 && isFifo(path))
    throw new ConfigError(
      [
        {
          key: path,
          message: 'is a named pipe that nobody writes to: it reads as empty (start its writer first)',
        },
      ],
      null,
    );
  const text = decodeUtf8(bytes);
  if (text === null)
    throw new ConfigError(
      [
        {
          key: path,
          message:
            'is not UTF-8 text, as TOML requires: save it as UTF-8 (a secret or path with other bytes would be read as something else)',
        },
      ],
      null,
    );
  return text;
}

function isFifo(path: string): boolean {
  try {
    return statSync(path).isFIFO();
  } catch {
    return false;
  }
}

/** A TOML document; a syntax error is a ConfigError naming `source`, the line and the column. */
export function parseTomlDocument(text: string, source: string): Record<string, unknown> {
  try {
    return parse(text);
  } catch (e) {
    if (!(e instanceof TomlError)) throw e;
    const reason = (e.message.split('\n')[0] ?? '').replace(/^Invalid TOML document: /, '');
    throw new ConfigError(
      [{ key: source, message: `syntax error at line ${e.line}, column ${e.column}: ${reason}` }],
      null,
    );
  }
}

/** The pure core of readTomlConfig: `text` is the file's content, `source` names it in messages. */
export function parseTomlConfig(
  text: string,
  env: Env = process.env,
  options: TomlConfigOptions & { readonly source?: string } = {},
): TomlConfigResult {
  const tableName = options.table ?? 'hiqlite';
  const source = options.source ?? null;
  const document = parseTomlDocument(text, source ?? 'TOML');
  const table = document[tableName];
  if (table === undefined || typeof table !== 'object' || table === null || Array.isArray(table)) {
    const message = table === undefined ? 'is missing' : `must be a table, got ${describeValue(table)}`;
    throw new ConfigError([{ key: `[${tableName}]`, message }], source);
  }
  return fromTable(table as Record<string, unknown>, env, tableName, source);
}

/** Only environment variables, as the Rust project's `NodeConfig::from_env`. */
export function loadEnvConfig(env: Env = process.env): TomlConfigResult {
  return fromTable(null, env, 'hiqlite', 'the environment');
}

const KEYS_BY_TOML = new Map(TOML_KEYS.map((k) => [k.toml, k]));
const KEYS_BY_TARGET = new Map(TOML_KEYS.map((k) => [k.target, k]));
const RUST_ONLY = new Set(RUST_ONLY_KEYS);
const RUST_ONLY_VARS = new Set(RUST_ONLY_ENV);
/** Variables read outside the configuration (the process's log level). */
const PROCESS_VARS = ['HQL_LOG_LEVEL', 'HQL_BACKUP_RESTORE'];
const KNOWN_VARS = new Set([
  ...TOML_KEYS.flatMap((k) => [envName(k.toml), ...(k.envAliases ?? [])]),
  ...PROCESS_VARS,
]);
const NODE_PARTS: Readonly<Record<string, string>> = {
  id: 'id',
  addrRaft: 'raft address',
  addrApi: 'api address',
};

/** A KeyNamer that can also name a node entry by its index in the user's list. */
type TomlNamer = (path: string, listIndex?: number) => string;

interface Value {
  readonly value: unknown;
  /** The environment variable it came from; null when from the file. */
  readonly env: string | null;
}

/** `table` null: environment variables only, and problems name them. */
function fromTable(
  table: Record<string, unknown> | null,
  env: Env,
  tableName: string,
  source: string | null,
): TomlConfigResult {
  const warnings: string[] = [];
  const origin = new Map<string, string>(); // camelCase target → environment variable
  const nodeIndex: number[] = []; // index in config.nodes → index in the user's list
  const namer = tomlNamer(origin, nodeIndex, table === null);
  const problems = new ConfigProblems(namer, source);

  const values = new Map<string, Value>();
  for (const [key, value] of Object.entries(table ?? {})) {
    if (KEYS_BY_TOML.has(key)) values.set(key, { value, env: null });
    else if (RUST_ONLY.has(key))
      warnings.push(`${key}: a hiqlite (Rust) setting this version does not support; ignored`);
    else problems.addNamed(key, `unknown key in [${tableName}]${didYouMean(key, KEYS_BY_TOML.keys())}`);
  }
  for (const spec of TOML_KEYS) {
    const fromEnv = readEnv(spec, env, problems);
    if (fromEnv !== null) values.set(spec.toml, fromEnv);
  }
  warnings.push(...envWarnings(env));

  const config = assemble(values, origin, namer, problems, nodeIndex);
  checkConfig(config, problems);
  problems.throwIfAny();
  if (config.logStatements === true) {
    warnings.push(
      `${namer('logStatements')}: SQL statements are logged with their parameters, which may expose data`,
    );
  }
  // checkConfig found no problem, so the object has the shape of NodeConfig.
  return { config: config as unknown as NodeConfig, warnings };
}

/** The first of the key's variables that is set and not empty. */
function readEnv(spec: TomlKey, env: Env, problems: ConfigProblems): Value | null {
  for (const name of [envName(spec.toml), ...(spec.envAliases ?? [])]) {
    const raw = env[name];
    if (raw === undefined || raw === '') continue;
    const parsed = parseEnvValue(spec, raw);
    if (parsed === undefined) {
      // Only integers and booleans fail to parse: no string value (a secret, a key) is echoed.
      const expected = spec.kind === 'integer' ? 'an integer' : 'true or false';
      problems.addNamed(
        `${spec.toml} (from ${name})`,
        `expected ${expected}, got ${describeValue(raw)}`,
        spec.target,
      );
      return null;
    }
    return { value: parsed, env: name };
  }
  return null;
}

/** undefined when `raw` does not parse as the key's kind. */
function parseEnvValue(spec: TomlKey, raw: string): unknown {
  switch (spec.kind) {
    case 'integer': {
      const n = Number(raw.trim());
      // Digits beyond 2^53 parse too: the range check then names the key's bounds.
      return /^\s*[+-]?[0-9]+\s*$/.test(raw) && Number.isInteger(n) ? n : undefined;
    }
    case 'boolean': {
      const v = raw.trim().toLowerCase();
      return v === 'true' ? true : v === 'false' ? false : undefined;
    }
    case 'string':
      return raw;
    case 'strings': // enc_keys (ENC_KEYS)
    case 'nodes':
      return splitEnvList(raw);
    default:
      return assertNever(spec.kind, 'value kind');
  }
}

/**
 * A list in one environment variable: newline-separated as in the Rust project, commas too (for
 * one-line shells and compose files); blank items are dropped.
 */
export function splitEnvList(raw: string): string[] {
  return raw
    .split(/[\n,]/)
    .map((s) => s.trim())
    .filter((s) => s.length > 0);
}

function envWarnings(env: Env): string[] {
  const out: string[] = [];
  for (const name of Object.keys(env)) {
    if (!name.startsWith('HQL_') || KNOWN_VARS.has(name) || env[name] === undefined) continue;
    if (RUST_ONLY_VARS.has(name))
      out.push(`${name}: a hiqlite (Rust) setting this version does not support; ignored`);
    else out.push(`${name}: not a hiqlite setting; ignored${didYouMean(name, KNOWN_VARS)}`);
  }
  return out;
}

/** The camelCase object checkConfig validates; TOML-level problems (node entry syntax) recorded. */
function assemble(
  values: ReadonlyMap<string, Value>,
  origin: Map<string, string>,
  namer: TomlNamer,
  problems: ConfigProblems,
  nodeIndex: number[],
): Record<string, unknown> {
  const config: Record<string, unknown> = {};
  const tls: Record<'raft' | 'api', Record<string, unknown>> = { raft: {}, api: {} };
  let tlsAuto: unknown;
  for (const [key, { value, env }] of values) {
    const spec = KEYS_BY_TOML.get(key);
    if (spec === undefined) continue;
    if (env !== null) origin.set(spec.target, env);
    const tlsTarget = /^tls\.(raft|api)\.(\w+)$/.exec(spec.target);
    if (spec.target === 'tlsAuto') tlsAuto = value;
    else if (tlsTarget !== null) tls[tlsTarget[1] as 'raft' | 'api'][tlsTarget[2] as string] = value;
    else if (spec.kind === 'nodes') config.nodes = nodeEntries(value, namer, nodeIndex, problems);
    else config[spec.target] = value;
  }
  if (tlsAuto !== undefined && typeof tlsAuto !== 'boolean') {
    problems.addNamed(namer('tlsAuto'), `must be true or false, got ${describeValue(tlsAuto)}`, 'tls');
  }
  // As in the Rust project, certificate files take precedence over tls_auto_certificates.
  const sides: Record<string, unknown> = {};
  for (const side of ['raft', 'api'] as const) {
    if (Object.keys(tls[side]).length > 0) sides[side] = tls[side];
    else if (tlsAuto === true) sides[side] = 'self-signed';
  }
  if (Object.keys(sides).length > 0) config.tls = sides;
  return config;
}

/**
 * Node entries parsed from `"<id> <raft> <api>"` strings or `{ id, addr_raft, addr_api }`
 * tables; entries that do not parse are reported and left out.
 */
function nodeEntries(
  value: unknown,
  namer: TomlNamer,
  nodeIndex: number[],
  problems: ConfigProblems,
): unknown {
  if (!Array.isArray(value)) {
    const message = `must be a list of "<id> <raft host:port> <api host:port>" strings (or { id, addr_raft, addr_api } tables), got ${describeValue(value)}`;
    problems.addNamed(namer('nodes'), message, 'nodes');
    return undefined;
  }
  const out: Array<{ id: number; addrRaft: string; addrApi: string }> = [];
  for (let i = 0; i < value.length; i++) {
    const entry: unknown = value[i];
    const parsed =
      typeof entry === 'string' ? parseNodeEntry(entry) : isPlainTable(entry) ? parseNodeTable(entry) : null;
    if (parsed?.ok === true) {
      nodeIndex.push(i);
      out.push(parsed.value);
      continue;
    }
    const reason =
      parsed === null
        ? 'must be a "<id> <raft host:port> <api host:port>" string or a { id, addr_raft, addr_api } table'
        : parsed.reason;
    // Before the push below, entry i has no config index yet: name it by its list index directly.
    problems.addNamed(namer(`nodes[${i}]`, i), `${describeValue(entry)}: ${reason}`, 'nodes');
  }
  return out;
}

/**
 * camelCase paths of checkConfig → the names the user wrote: TOML keys, plus the variable when
 * the value came from one; with `envOnly`, the variables themselves.
 */
function tomlNamer(
  origin: ReadonlyMap<string, string>,
  nodeIndex: readonly number[],
  envOnly: boolean,
): TomlNamer {
  const from = (name: string, target: string, variable: string) => {
    const env = origin.get(target);
    if (env !== undefined) return `${name} (from ${env})`;
    return envOnly ? variable : name;
  };
  return (path, listIndex) => {
    const node = /^nodes\[(\d+)\](?:\.(\w+))?$/.exec(path);
    if (node !== null) {
      const i = listIndex ?? nodeIndex[Number(node[1])] ?? Number(node[1]);
      const part = node[2] === undefined ? '' : ` ${NODE_PARTS[node[2]] ?? node[2]}`;
      return from(`nodes[${i}]${part}`, 'nodes', `HQL_NODES entry ${i}${part}`);
    }
    const spec = KEYS_BY_TARGET.get(path);
    if (spec !== undefined) return from(spec.toml, path, envName(spec.toml));
    // An item of a list key (enc_keys[2]): the TOML name with its index, as for nodes.
    const item = /^(\w+)\[(\d+)\]$/.exec(path);
    const list = item === null ? undefined : KEYS_BY_TARGET.get(item[1] as string);
    if (item !== null && list !== undefined)
      return from(`${list.toml}[${item[2]}]`, list.target, `${envName(list.toml)} entry ${item[2]}`);
    const side = /^tls\.(raft|api)$/.exec(path);
    if (side !== null) return `tls_${side[1]}_cert/tls_${side[1]}_key`;
    return path;
  };
}

function didYouMean(word: string, candidates: Iterable<string>): string {
  const guess = closestKey(word, candidates);
  return guess === null ? '' : ` (did you mean ${guess}?)`;
}
