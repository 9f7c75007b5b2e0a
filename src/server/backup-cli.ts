/**
 * `hiqlite backup create|list|download|restore --config FILE`: backups from the command line.
 * `create` asks the running cluster (its leader takes the backup); the others work on the
 * targets directly: the node's local folder (`--local`) or the S3 bucket (`--s3`).
 */
import { mkdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { Command } from 'commander';
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
import { sqlConfig } from '../node/sqlite-setting.js';
import { createProgress } from './progress.js';

interface Where {
  readonly config: string;
  readonly s3?: boolean;
  readonly local?: boolean;
}

/** Backups are of the SQLite database: a cache-only node (sqlite = false) has none to back up. */
function load(file: string): SqlNodeConfig {
  const cfg = resolveConfig(
    loadTomlConfig(file, process.env, { onWarning: (w) => process.stderr.write(`warning: ${w}\n`) }),
  );
  return sqlConfig(cfg, 'hiqlite backup');
}

async function pickTarget(cfg: SqlNodeConfig, o: Where): Promise<BackupTarget> {
  const targets = await openBackupTargets(cfg.paths.backupsDir, cfg.backup);
  if (o.s3 === true) {
    if (targets.s3 === null) throw new Error('--s3: this configuration has no s3_url');
    return targets.s3;
  }
  return targets.local;
}

/**
 * Where `backup download <name> --out <out>` writes: `out` itself, or `<out>/<name>.db` (without
 * `.hqbak`) when `out` is a folder, an existing one or a path ending in a slash (made if missing).
 * A folder given as the file used to fail at the final rename (ENOTDIR / EISDIR).
 */
export function downloadPath(out: string, name: string): string {
  const isDir = /[/\\]$/.test(out) || statSync(out, { throwIfNoEntry: false })?.isDirectory() === true;
  if (!isDir) return out;
  mkdirSync(out, { recursive: true });
  return join(out, `${name.replace(/\.hqbak$/, '')}.db`);
}

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
      const startedMs = Date.now();
      const tick = process.stderr.isTTY
        ? setInterval(
            () => process.stderr.write(`\rbacking up… ${Math.round((Date.now() - startedMs) / 1000)} s`),
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
    .option('--s3', 'list the S3 bucket')
    .option('--local', "list this node's local folder (default)")
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
    .option('--s3', 'from the S3 bucket')
    .option('--local', "from this node's local folder (default)")
    .action(async (name: string, o: Where & { out: string }) => {
      const cfg = load(o.config);
      const target = await pickTarget(cfg, o);
      const size = (await target.list()).find((b) => b.name === name)?.bytes ?? null;
      const progress = createProgress(`download ${name}`, size);
      const source = await target.get(name);
      const outPath = downloadPath(o.out, name);
      const { header } = await restoreBackupFile(source, {
        keys: KeyRing.of(cfg.backup.encKeys, cfg.backup.encKeyActive),
        label: `backup ${name}`,
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
      const lock = await lockDataDir(cfg.dataDir);
      const progress = createProgress(`restore ${source}`, null);
      try {
        const outcome = await restoreNode(cfg, spec, pino({ level: process.env.HQL_LOG_LEVEL ?? 'warn' }), {
          onProgress: (n) => progress.update(n),
        });
        if (outcome.action === 'installed') progress.done();
        process.stdout.write(
          outcome.action === 'installed'
            ? `node ${cfg.nodeId}: installed the backup at log index ${outcome.header?.logIndex}; start the nodes (without HQL_BACKUP_RESTORE)\n`
            : outcome.action === 'discarded'
              ? `node ${cfg.nodeId}: state discarded; it joins node 1 when started\n`
              : `node ${cfg.nodeId}: this restore was already done here; nothing changed\n`,
        );
      } finally {
        await lock.release();
      }
    });
}
