/**
 * hiqlite: embeddable SQLite for Node.js that forms a Raft cluster.
 */
export type {
  ExecuteResult,
  HiqliteClient,
  Metrics,
  MigrationInput,
  Params,
  QueryOptions,
  Row,
} from './client/client.js';
export { type HiqliteNode, start } from './client/embedded.js';
export { type ConnectOptions, connect } from './client/remote.js';
export { onShutdownSignal } from './client/signals.js';
export { type ErrorCode, HiqliteError } from './lib/errors.js';
export type { NodeConfig } from './node/config/config.js';
export { generateConfig, loadTomlConfig, resolveConfig } from './node/config/config.js';
