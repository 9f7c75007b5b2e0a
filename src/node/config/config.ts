/**
 * The node configuration: what `start(config)` takes (`NodeConfig`), how it is validated and
 * completed (`resolveConfig`), loaded from TOML and `HQL_*` variables (`loadTomlConfig`), and
 * generated for a local cluster (`generateConfig`). Every key: docs/CONFIGURATION.md.
 */
import type { ThreadHeapLimits } from '../../sm/sql/worker-client.js';
import type { ResolvedNodeConfig } from './config-types.js';

export {
  formatHostPort,
  isPlainTable,
  parseBindHost,
  parseHostPort,
  parseNodeEntry,
  parseNodeTable,
} from './config-address.js';
export { ConfigError, type ConfigProblem } from './config-errors.js';
export {
  type GenerateConfigOptions,
  type GeneratedConfig,
  type GeneratedNodeFile,
  generateConfig,
  randomSecret,
  writeGeneratedConfig,
} from './config-generate.js';
export { FILENAME_DB_DEFAULT, INTEGER_SETTINGS, NODES_MAX, SECRET_CHARS_MIN } from './config-keys.js';
export { resolveConfig } from './config-resolve.js';
export {
  type Env,
  loadEnvConfig,
  loadTomlConfig,
  parseTomlConfig,
  readTomlConfig,
  type TomlConfigOptions,
  type TomlConfigResult,
} from './config-toml.js';
export type {
  DiskNodeConfig,
  HostPort,
  NodeConfig,
  NodeEntry,
  ResolvedNode,
  ResolvedNodeConfig,
  ResolvedPaths,
  SqlNodeConfig,
  TlsFiles,
  TlsSetting,
} from './config-types.js';

/** The V8 heap limits of the SQLite writer and the read threads of a node. */
export function threadHeapLimits(cfg: ResolvedNodeConfig): ThreadHeapLimits {
  return { youngGenerationMb: cfg.threadYoungGenerationMb, oldGenerationMaxMb: cfg.threadOldGenerationMaxMb };
}

/** The V8 heap limits of the node's own thread (`start()`'s default `thread: 'worker'`). */
export function nodeThreadHeapLimits(cfg: ResolvedNodeConfig): ThreadHeapLimits {
  return {
    youngGenerationMb: cfg.nodeThreadYoungGenerationMb,
    oldGenerationMaxMb: cfg.threadOldGenerationMaxMb,
  };
}
