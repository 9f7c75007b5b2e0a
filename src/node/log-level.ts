/**
 * `HQL_LOG_LEVEL`: the pino level of `hiqlite serve`, `hiqlite proxy`, the backup commands and an
 * embedded node without a logger of its own. Empty counts as unset (as for every `HQL_*`
 * variable); an unknown level is a ConfigError naming the variable, instead of pino's own
 * "default level:… must be included in custom levels" from deep inside a constructor.
 */
import { ConfigError, describeValue } from './config/config-errors.js';

export const LOG_LEVEL_ENV = 'HQL_LOG_LEVEL';
export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

/** The level `HQL_LOG_LEVEL` names (any case, spaces around ignored), or `fallback` when unset or empty. */
export function logLevelFromEnv(
  fallback: LogLevel,
  env: Readonly<Record<string, string | undefined>> = process.env,
): LogLevel {
  const raw = env[LOG_LEVEL_ENV];
  if (raw === undefined || raw.trim() === '') return fallback;
  const level = raw.trim().toLowerCase();
  if ((LOG_LEVELS as readonly string[]).includes(level)) return level as LogLevel;
  throw new ConfigError(
    [{ key: LOG_LEVEL_ENV, message: `must be one of ${LOG_LEVELS.join(', ')}, got ${describeValue(raw)}` }],
    null,
  );
}
