/**
 * Backups as a feature of the node (src/node/node-features.ts): `HQL_BACKUP_RESTORE` (and a
 * restore pending on a node other than 1) before the node opens its state, and the backup service once it runs. The client layer passes this to
 * the node it starts.
 */
import type { NodeFeatures } from '../node/node-features.js';
import { BackupService } from './backup-service.js';
import { removeRestoreLeftovers, restoreFromEnv, settlePendingRestore } from './restore.js';
import { openBackupTargets } from './targets.js';

export const backupFeatures: NodeFeatures = {
  beforeOpen: async (cfg, log, o) => {
    await removeRestoreLeftovers(cfg, log);
    await restoreFromEnv(cfg, log);
    await settlePendingRestore(cfg, log, o);
  },
  backups: async (host) =>
    new BackupService(host, await openBackupTargets(host.cfg.paths.backupsDir, host.cfg.backup)).start(),
};
