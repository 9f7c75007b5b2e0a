/**
 * A backup file of a consistent database copy, as a node writes it (src/backup/backup-service.ts)
 * but as node 1 of no cluster: its name and its compressed, encrypted body (read it once).
 */
import { type BackupSource, backupFileStream } from '../../src/backup/backup-file.js';
import type { CopyInfo } from '../../src/backup/copy-steps.js';
import type { KeyRing } from '../../src/backup/key-ring.js';
import { formatBackupName } from '../../src/backup/names.js';

export function backupStreamOf(
  copyPath: string,
  copy: CopyInfo,
  o: { createdMs: number; keys: KeyRing } & Pick<BackupSource, 'chunkBytes' | 'gzipLevel' | 'checked'>,
): { name: string; body: AsyncIterable<Buffer> } {
  const name = formatBackupName({ createdMs: o.createdMs, logIndex: copy.logIndex, nodeId: 1 });
  const { body } = backupFileStream({
    dbPath: copyPath,
    clusterId: null,
    logIndex: copy.logIndex,
    logTerm: copy.logTerm,
    schemaVersion: copy.schemaVersion,
    createdMs: o.createdMs,
    databaseBytes: copy.bytes,
    nodeId: 1,
    keys: o.keys,
    ...(o.chunkBytes === undefined ? {} : { chunkBytes: o.chunkBytes }),
    ...(o.gzipLevel === undefined ? {} : { gzipLevel: o.gzipLevel }),
    ...(o.checked === undefined ? {} : { checked: o.checked }),
  });
  return { name, body };
}
