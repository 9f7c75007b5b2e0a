import { closeSync, openSync } from 'node:fs';
import { PRIVATE_FILE_MODE } from '../../lib/file-modes.js';

/**
 * Creates `path` empty with owner-only permissions unless it exists. SQLite makes a new
 * database 0644 (less the umask) but keeps the mode of an existing file, and gives its -wal and
 * -shm files the database's mode.
 */
export function ensurePrivateFileSync(path: string): void {
  closeSync(openSync(path, 'a', PRIVATE_FILE_MODE));
}
