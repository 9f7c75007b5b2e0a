/**
 * Configuration problems are collected, not thrown one at a time: a user fixing a config file
 * sees every problem at once. Each names its key the way the user wrote it (TOML name and
 * environment variable for a file, camelCase for an object passed to `start`).
 */
import { HiqliteError } from '../../lib/errors.js';

export { closestKey } from '../../lib/closest-key.js';

export interface ConfigProblem {
  /** The key as the user wrote it: `secret_api (from HQL_SECRET_API)`, `nodes[1].addrRaft`. */
  readonly key: string;
  readonly message: string;
}

/** HQL_INVALID_CONFIG with every problem found; never retryable (the same config fails again). */
export class ConfigError extends HiqliteError {
  override readonly name = 'ConfigError';
  readonly problems: readonly ConfigProblem[];

  constructor(problems: readonly ConfigProblem[], source: string | null, omitted = 0) {
    super('HQL_INVALID_CONFIG', formatProblems(problems, source, omitted), { retryable: false });
    this.problems = problems;
  }
}

/** Maps a camelCase key path (`nodeId`, `nodes[2].addrApi`, `tls.raft.certFile`) to the user's name for it. */
export type KeyNamer = (path: string) => string;

export const camelCaseNamer: KeyNamer = (path) => path;

/** More problems than this in one config are counted, not listed (the collector stays bounded). */
const PROBLEMS_MAX = 100;

export class ConfigProblems {
  private readonly list: ConfigProblem[] = [];
  private readonly paths = new Set<string>();
  private omitted = 0;

  constructor(
    readonly name: KeyNamer,
    private readonly source: string | null = null,
  ) {}

  /** A problem with the key at camelCase `path`. */
  add(path: string, message: string): void {
    this.paths.add(path);
    this.push({ key: this.name(path), message });
  }

  /** A problem whose key has no camelCase path (a TOML-only key, a syntax error). */
  addNamed(key: string, message: string, path: string | null = null): void {
    if (path !== null) this.paths.add(path);
    this.push({ key, message });
  }

  /** Whether a problem was recorded for `path` or any key below it (`nodes` covers `nodes[0].id`). */
  has(path: string): boolean {
    for (const p of this.paths) {
      if (p === path || p.startsWith(`${path}.`) || p.startsWith(`${path}[`)) return true;
    }
    return false;
  }

  get count(): number {
    return this.list.length + this.omitted;
  }

  throwIfAny(): void {
    if (this.count > 0) throw new ConfigError([...this.list], this.source, this.omitted);
  }

  private push(p: ConfigProblem): void {
    if (this.list.length < PROBLEMS_MAX) this.list.push(p);
    else this.omitted++;
  }
}

function formatProblems(problems: readonly ConfigProblem[], source: string | null, omitted: number): string {
  const total = problems.length + omitted;
  const where = source === null ? '' : ` in ${source}`;
  const lines = problems.map((p) => `  - ${p.key}: ${p.message}`);
  if (omitted > 0) lines.push(`  - … and ${omitted} more`);
  return `invalid configuration${where} (${total} problem${total === 1 ? '' : 's'}):\n${lines.join('\n')}`;
}

/** A value for an error message: short, and never the whole of a long string. */
export function describeValue(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  switch (typeof value) {
    case 'string':
      return JSON.stringify(value.length > 60 ? `${value.slice(0, 57)}...` : value);
    case 'number':
    case 'boolean':
    case 'bigint':
      return String(value);
    case 'undefined':
      return 'nothing';
    case 'object':
      return value instanceof Date ? 'a date' : 'a table';
    default:
      return `a ${typeof value}`;
  }
}
