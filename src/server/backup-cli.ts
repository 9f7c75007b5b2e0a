/**
 * `hiqlite backup create|list|download|restore --config FILE`: backups from the command line.
 * `create` asks the running cluster (its leader takes the backup); the others work on the
 * targets directly: the node's local folder (`--local`) or the S3 bucket (`--s3`).
 */
import { statSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { type Command, Option } from 'commander';
import { pino } from 'pino';
import { restoreBackupFile } from '../backup/backup-file.js';
import { KeyRing } from '../backup/key-ring.js';
import { parseBackupName } from '../backup/names.js';
import { restoreNode } from '../backup/restore.js';
import type { BackupTarget } from '../backup/target.js';
import { openBackupTargets } from '../backup/targets.js';
import { connect } from '../client/remote.js';
import { loadTomlConfig, resolveConfig, type SqlNodeConfig } from '../node/config/config.js';
import { lockDataDir } from '../node/data-dir-lock.js';
import { logLevelFromEnv } from '../node/log-level.js';
import { sqlConfig } from '../node/sqlite-setting.js';
import { isInsideDir } from '../storage/file-paths.js';
import { makeDirsSync } from '../storage/make-dirs.js';
import { cliError } from './cli-error.js';
import { createProgress } from './progress.js';

interface Where {
  readonly config: string;
  readonly s3?: boolean;
  readonly local?: boolean;
}

/** Backups are of the SQLite database: a cache-only node (sqlite = false) has none to back up. */
function load(file: string): SqlNodeConfig {
  // Every backup command takes HQL_LOG_LEVEL (restore logs through it): a wrong one is refused
  // by each, not only by those that log (list, create and download ran on with "loud").
  logLevelFromEnv('warn');
  const cfg = resolveConfig(
    loadTomlConfig(file, process.env, { onWarning: (w) => process.stderr.write(`warning: ${w}\n`) }),
  );
  return sqlConfig(cfg, 'hiqlite backup');
}

async function pickTarget(cfg: SqlNodeConfig, o: Where): Promise<BackupTarget> {
  // Beside a node that may be running: the local folder is only read (a backup being written
  // there has a .partial file that an owner's open would remove).
  const targets = await openBackupTargets(cfg.paths.backupsDir, cfg.backup, { reader: true });
  if (o.s3 === true) {
    if (targets.s3 === null) throw cliError('HQL_INVALID_CONFIG', '--s3: this configuration has no s3_url');
    return targets.s3;
  }
  return targets.local;
}

/**
 * Where `backup download <name> --out <out>` writes: `out` itself, or `<out>/<name>.db` (without
 * `.hqbak`) when `out` is a folder, an existing one or a path ending in a slash (made if missing).
 * A folder given as the file used to fail at the final rename (ENOTDIR / EISDIR).
 *
 * The download ends with a rename onto that path, which replaces whatever is there: refused are
 * an empty `out`, a path that exists and is not a regular file (`--out /dev/null` replaced the
 * device with a regular file, a pipe or socket would go the same way), and a path inside the
 * node's `data_dir` (a download onto the live database, or anything else the node owns, would
 * change the node's state behind its back; a backup goes back into a node with `backup restore`).
 */
export function downloadPath(out: string, name: string, dataDir: string): string {
  if (out.trim().length === 0)
    throw cliError('HQL_INVALID_PARAMS', '--out: give the SQLite file to write, or a folder');
  const isDir = /[/\\]$/.test(out) || statSync(out, { throwIfNoEntry: false })?.isDirectory() === true;
  const path = isDir ? join(out, `${name.replace(/\.hqbak$/, '')}.db`) : out;
  const existing = statSync(path, { throwIfNoEntry: false });
  if (existing !== undefined && !existing.isFile())
    throw cliError(
      'HQL_INVALID_PARAMS',
      `--out ${path}: exists and is not a regular file${existing.isDirectory() ? ' (a folder)' : ' (a device, pipe or socket)'}; the download would replace it: give the path of a new SQLite file, or a folder`,
    );
  const parent = statSync(dirname(resolve(path)), { throwIfNoEntry: false });
  if (!isDir && parent?.isDirectory() !== true)
    throw cliError(
      'HQL_INVALID_PARAMS',
      `--out ${path}: its folder ${dirname(resolve(path))} does not exist (end --out with / to have a folder made)`,
    );
  if (isInsideDir(path, dataDir))
    throw cliError(
      'HQL_INVALID_PARAMS',
      `--out ${path}: is inside the node's data_dir ${dataDir}, which the node owns: write the copy elsewhere (to put a backup back into a node, stop it and run \`hiqlite backup restore\`)`,
    );
  if (isDir) makeDirsSync(out, 0o777); // the umask applies, as to any folder a user makes
  return path;
}

/** `--s3` and `--local` name one target each: both at once is refused, not resolved silently. */
const s3Option = (what: string) => new Option('--s3', what).conflicts('local');
const localOption = (what: string) => new Option('--local', what).conflicts('s3');

export function registerBackupCommands(program: Command): void {
  const backup = program.command('backup').description('encrypted backups: create, list, download, restore');
  const configOption = ['-c, --config <file>', 'TOML file of a node ([hiqlite] table)'] as const;

  backup
    .command('create')
    .description('take a backup now on the running cluster (its leader takes it)')
    .requiredOption(...configOption)
    .action(async (o: Where) => {
      const cfg = load(o.config);
      const client = await connect({
        nodes: cfg.nodes.map((n) => n.addrApi),
        secretApi: cfg.secretApi,
        ...(cfg.tls.api === null ? {} : { tls: true }),
      });
      const startedMs = performance.now();
      const tick = process.stderr.isTTY
        ? setInterval(
            () =>
              process.stderr.write(`\rbacking up… ${Math.round((performance.now() - startedMs) / 1000)} s`),
            500,
          )
        : null;
      try {
        const info = await client.backup();
        if (tick !== null) process.stderr.write('\r\x1b[K');
        process.stdout.write(
          `${info.name}  log index ${info.logIndex}  ${info.bytes} bytes (database ${info.databaseBytes})  on node ${info.nodeId}, stored: ${info.targets.join(', ')}\n`,
        );
      } finally {
        if (tick !== null) clearInterval(tick);
        await client.close();
      }
    });

  backup
    .command('list')
    .description('list the backups of the local folder (default) or of the S3 bucket')
    .requiredOption(...configOption)
    .addOption(s3Option('list the S3 bucket'))
    .addOption(localOption("list this node's local folder (default)"))
    .action(async (o: Where) => {
      const target = await pickTarget(load(o.config), o);
      const list = (await target.list()).sort((a, b) => a.name.localeCompare(b.name));
      for (const b of list) {
        const p = parseBackupName(b.name);
        process.stdout.write(
          `${b.name}  ${new Date(p?.createdMs ?? b.modifiedMs).toISOString()}  index ${p?.logIndex ?? '?'}  ${b.bytes} bytes\n`,
        );
      }
      process.stderr.write(`${list.length} backup(s) in ${target.description}\n`);
    });

  backup
    .command('download <name>')
    .description('decrypt a backup into a plain SQLite file (checked before it is written in place)')
    .requiredOption(...configOption)
    .requiredOption(
      '-o, --out <path>',
      'the SQLite file to write, or a folder (an existing one, or a path ending in /) for <name>.db in it',
    )
    .addOption(s3Option('from the S3 bucket'))
    .addOption(localOption("from this node's local folder (default)"))
    .action(async (name: string, o: Where & { out: string }) => {
      const cfg = load(o.config);
      // Before anything is read: a destination that cannot be used fails at once.
      const outPath = downloadPath(o.out, name, cfg.dataDir);
      const target = await pickTarget(cfg, o);
      const size = (await target.list()).find((b) => b.name === name)?.bytes ?? null;
      const progress = createProgress(`download ${name}`, size);
      const source = await target.get(name);
      const { header } = await restoreBackupFile(source, {
        keys: KeyRing.of(cfg.backup.encKeys, cfg.backup.encKeyActive),
        label: `backup ${name}`,
        name,
        outPath,
        onProgress: (n) => progress.update(n),
      });
      progress.done();
      process.stdout.write(
        `${outPath}: log index ${header.logIndex}, ${header.databaseBytes} bytes, verified\n`,
      );
    });

  backup
    .command('restore <source>')
    .description(
      "restore this node's data directory from a backup (node stopped): a local backup name, file:<path> or s3:<object>; run it for every node, node 1 installs the backup",
    )
    .requiredOption(...configOption)
    .action(async (source: string, o: Where) => {
      const cfg = load(o.config);
      const spec = parseBackupName(source) !== null ? `file:${join(cfg.paths.backupsDir, source)}` : source;
      if (!/^(file:|s3:)./.test(spec))
        throw cliError(
          'HQL_INVALID_PARAMS',
          `backup restore ${source}: give the name of a backup in this node's folder (hiqlite backup list), file:<path> or s3:<object name>`,
        );
      const lock = await lockDataDir(cfg.dataDir);
      const progress = createProgress(`restore ${source}`, null);
      try {
        const outcome = await restoreNode(cfg, spec, pino({ level: logLevelFromEnv('warn') }), {
          onProgress: (n) => progress.update(n),
          origin: 'backup restore',
        });
        if (outcome.action === 'installed') progress.done();
        process.stdout.write(
          outcome.action === 'installed'
            ? `node ${cfg.nodeId}: installed the backup at log index ${outcome.header?.logIndex}; once every node is restored (this command on each node), start them (without HQL_BACKUP_RESTORE): a node left out keeps the old cluster\n`
            : outcome.action === 'pending'
              ? `node ${cfg.nodeId}: restore pending: when started, it discards its state and joins node 1 once node 1 has installed the backup (a new cluster); if node 1 has not, it keeps its state\n`
              : `node ${cfg.nodeId}: this restore was already done here; nothing changed\n`,
        );
      } finally {
        await lock.release();
      }
    });
}
