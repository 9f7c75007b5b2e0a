/**
 * `hiqlite generate-config`: a ready-to-run localhost cluster of N nodes, one TOML file per node
 * (`node-<id>.toml`, each complete: `hiqlite serve -c node-2.toml` needs no extra variables),
 * sharing two random secrets. Data directories go to `<dir>/data/node-<id>`.
 */
import { randomBytes } from 'node:crypto';
import { chmodSync, linkSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { basename, join, resolve } from 'node:path';
import { assert } from '../../lib/assert.js';
import { unusableDirReason } from '../../storage/file-paths.js';
import { makeDirsSync } from '../../storage/make-dirs.js';
import { formatHostPort, parseBindHost } from './config-address.js';
import { ConfigError, ConfigProblems, camelCaseNamer, describeValue } from './config-errors.js';
import { FILENAME_DB_DEFAULT } from './config-keys.js';

export interface GenerateConfigOptions {
  /** Number of nodes, 1 to GENERATE_NODES_MAX. */
  readonly nodes: number;
  /** Where the files are meant to be written; data directories are derived from it. */
  readonly dir: string;
  /** Node i (1-based) gets Raft port `basePortRaft + i - 1` and API port `basePortApi + i - 1`. */
  readonly basePortRaft?: number;
  readonly basePortApi?: number;
  /** Host of every node. Default 127.0.0.1. */
  readonly host?: string;
}

export interface GeneratedNodeFile {
  readonly nodeId: number;
  /** `node-<id>.toml` */
  readonly fileName: string;
  /** `<dir>/node-<id>.toml`, absolute. */
  readonly path: string;
  readonly toml: string;
}

export interface GeneratedConfig {
  readonly files: readonly GeneratedNodeFile[];
  readonly secretRaft: string;
  readonly secretApi: string;
}

/** A local cluster bigger than this is a typo, not a test setup. */
export const GENERATE_NODES_MAX = 99;
const SECRET_CHARS = 32;

export function generateConfig(options: GenerateConfigOptions): GeneratedConfig {
  const { nodes, basePortRaft = 8100, basePortApi = 8200, host = '127.0.0.1' } = options;
  checkOptions(nodes, basePortRaft, basePortApi, options.dir, host);
  const dir = resolve(options.dir);
  const secretRaft = randomSecret(SECRET_CHARS);
  const secretApi = randomSecret(SECRET_CHARS);
  const entries: string[] = [];
  for (let id = 1; id <= nodes; id++) {
    const raft = formatHostPort({ host, port: basePortRaft + id - 1 });
    const api = formatHostPort({ host, port: basePortApi + id - 1 });
    entries.push(`${id} ${raft} ${api}`);
  }
  const files: GeneratedNodeFile[] = [];
  for (let id = 1; id <= nodes; id++) {
    const fileName = `node-${id}.toml`;
    const toml = nodeToml({
      id,
      nodes,
      entries,
      dataDir: join(dir, 'data', `node-${id}`),
      secretRaft,
      secretApi,
    });
    files.push({ nodeId: id, fileName, path: join(dir, fileName), toml });
  }
  return { files, secretRaft, secretApi };
}

/**
 * Writes the files with mode 0600 (they hold the secrets) into a directory created with mode
 * 0700. Existing files are kept unless `overwrite`: a second run must not silently change the
 * secrets of a cluster that has data.
 */
export function writeGeneratedConfig(
  generated: GeneratedConfig,
  options: { readonly overwrite?: boolean } = {},
): void {
  for (const file of generated.files) {
    const dir = resolve(file.path, '..');
    try {
      makeDirsSync(dir, 0o700);
    } catch (e) {
      throw unwritable(dir, e);
    }
    // Written to a new file beside it, then put in place by a rename (overwrite) or a link (no
    // overwrite: fails if anything is there). Either way what sits at the path (a symbolic link,
    // a FIFO) is replaced or refused, never written through or opened: a link to another file
    // left that file overwritten, a FIFO blocked the command forever.
    const tmp = join(dir, `.${basename(file.path)}.${randomBytes(6).toString('hex')}.tmp`);
    try {
      writeFileSync(tmp, file.toml, { mode: 0o600, flag: 'wx' });
      chmodSync(tmp, 0o600); // whatever the umask
      if (options.overwrite === true) renameSync(tmp, file.path);
      else linkSync(tmp, file.path);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'EEXIST')
        throw new ConfigError(
          [
            {
              key: 'overwrite',
              message: `${file.path} already exists: set overwrite to replace it (${(e as Error).message})`,
            },
          ],
          'generateConfig options',
        );
      throw unwritable(file.path, e);
    } finally {
      rmSync(tmp, { force: true });
    }
  }
}

/** A folder or file that cannot be written (a file where the folder goes, a folder where a file goes). */
function unwritable(path: string, e: unknown): unknown {
  const reason = unusableDirReason(e);
  if (reason === null) return e;
  const message = `${path}: ${reason} (${(e as Error).message})`;
  return new ConfigError([{ key: 'dir', message }], 'generateConfig options');
}

/** `chars` characters from [A-Za-z0-9], uniformly: bytes >= 248 are skipped (248 = 4 × 62). */
export function randomSecret(chars: number): string {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';
  let out = '';
  // Each round keeps 248/256 of its bytes on average; 64 rounds failing is impossible in practice.
  for (let round = 0; round < 64 && out.length < chars; round++) {
    for (const byte of randomBytes(chars * 2)) {
      if (byte < 248 && out.length < chars) out += alphabet[byte % alphabet.length];
    }
  }
  assert(out.length === chars, 'random secret complete');
  return out;
}

function nodeToml(n: {
  id: number;
  nodes: number;
  entries: readonly string[];
  dataDir: string;
  secretRaft: string;
  secretApi: string;
}): string {
  return [
    `# hiqlite node ${n.id} of ${n.nodes}, written by \`hiqlite generate-config\`.`,
    `# Start it with: hiqlite serve -c node-${n.id}.toml`,
    '# Every key can be overridden by the environment variable HQL_<KEY> (HQL_NODE_ID, HQL_DATA_DIR, ...);',
    '# docs/CONFIGURATION.md lists every key. This file holds the cluster secrets: keep it private.',
    '',
    '[hiqlite]',
    `node_id = ${n.id}`,
    '# Every node of the cluster: "<id> <raft host:port> <api host:port>". The same list on every node.',
    'nodes = [',
    ...n.entries.map((e) => `    ${tomlString(e)},`),
    ']',
    `data_dir = ${tomlString(n.dataDir)}`,
    `filename_db = ${tomlString(FILENAME_DB_DEFAULT)}`,
    '# The same two secrets on every node, at least 16 characters each.',
    `secret_raft = ${tomlString(n.secretRaft)}`,
    `secret_api = ${tomlString(n.secretApi)}`,
    '',
  ].join('\n');
}

/** A TOML basic string. JSON's escapes are valid TOML; DEL is the one control TOML also requires escaped. */
function tomlString(s: string): string {
  return JSON.stringify(s).replaceAll('\u007f', '\\u007F');
}

function checkOptions(
  nodes: number,
  basePortRaft: number,
  basePortApi: number,
  dir: unknown,
  host: unknown,
): void {
  const problems = new ConfigProblems(camelCaseNamer, 'generateConfig options');
  const parsedHost = typeof host === 'string' ? parseBindHost(host) : null;
  if (parsedHost?.ok !== true)
    problems.add('host', `must be a host name or IP address, got ${describeValue(host)}`);
  const count = Number.isSafeInteger(nodes) && nodes >= 1 && nodes <= GENERATE_NODES_MAX ? nodes : null;
  if (count === null) {
    problems.add('nodes', `must be an integer from 1 to ${GENERATE_NODES_MAX}, got ${describeValue(nodes)}`);
  }
  if (typeof dir !== 'string' || dir.length === 0)
    problems.add('dir', `must be a directory, got ${describeValue(dir)}`);
  const last = (count ?? 1) - 1;
  for (const [key, base] of [
    ['basePortRaft', basePortRaft],
    ['basePortApi', basePortApi],
  ] as const) {
    if (!Number.isSafeInteger(base) || base < 1 || base + last > 65535) {
      problems.add(
        key,
        `must be an integer from 1 to ${65535 - last} for ${count ?? 1} nodes, got ${describeValue(base)}`,
      );
    }
  }
  if (count !== null && basePortRaft < basePortApi + count && basePortApi < basePortRaft + count) {
    problems.add(
      'basePortApi',
      `ports ${basePortApi}.. overlap the Raft ports ${basePortRaft}..${basePortRaft + last}`,
    );
  }
  problems.throwIfAny();
}
