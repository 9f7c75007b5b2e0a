/**
 * hiqlite: embeddable SQLite for Node.js that forms a Raft cluster.
 *
 * Everything README.md and docs/*.md name for users is exported here (test/package checks it
 * against an installed tarball). Types that appear in these declarations must resolve in a user's
 * application from hiqlite's own dependencies: no types of dev dependencies (better-sqlite3's
 * types are a dev dependency).
 */

export { S3Error } from './backup/s3/s3-errors.js';
export {
  type CacheGetOptions,
  CacheHandle,
  type CachePutOptions,
  CounterHandle,
  DistributedLock,
  LaggedError,
  type ListenNotification,
  type LockOptions,
} from './client/cache-client.js';
export type {
  ExecuteResult,
  HiqliteClient,
  Metrics,
  MigrationInput,
  Params,
  QueryOptions,
  Row,
} from './client/client.js';
export { connect } from './client/connect.js';
export { type HiqliteNode, start } from './client/embedded.js';
export type { ConnectOptions } from './client/remote.js';
export { onShutdownSignal } from './client/signals.js';
export { type ErrorCode, HiqliteError } from './lib/errors.js';
export type {
  Env,
  GenerateConfigOptions,
  GeneratedConfig,
  GeneratedNodeFile,
  HostPort,
  NodeConfig,
  NodeEntry,
  ResolvedNode,
  ResolvedNodeConfig,
  ResolvedPaths,
  TlsFiles,
  TlsSetting,
  TomlConfigOptions,
  TomlConfigResult,
} from './node/config/config.js';
export {
  ConfigError,
  type ConfigProblem,
  generateConfig,
  loadEnvConfig,
  loadTomlConfig,
  parseTomlConfig,
  readTomlConfig,
  resolveConfig,
  writeGeneratedConfig,
} from './node/config/config.js';
export type {
  ClusterMembership,
  Consistency,
  MembershipView,
  NodeMetrics,
  StartOptions,
} from './node/hiqlite-node.js';
export type { BackupInfo } from './node/node-features.js';
export { EntryDecodeError } from './protocol/entry-codec.js';
export { ProtocolError } from './protocol/protocol-error.js';
export { CacheError, type CacheErrorCode, type CacheErrorInfo } from './sm/cache/errors.js';
export type { ParamInput } from './sm/sql/command.js';
export { SqlError, type SqlErrorCode, type SqlErrorInfo } from './sm/sql/errors.js';
export type { SqlValue } from './sm/sql/values.js';
export { LogCorruptionError } from './storage/storage-errors.js';
