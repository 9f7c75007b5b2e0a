/**
 * Permissions of everything a node writes under its data directory: the database holds the
 * application's data and the directory holds the cluster id, so neither is readable by other
 * users of the machine, whatever the process's umask (generated configs are already 0600).
 */
import { closeSync, mkdirSync, openSync } from 'node:fs';

/** Directories a node creates: owner only. */
export const PRIVATE_DIR_MODE = 0o700;
/** Files a node creates: owner read and write only. */
export const PRIVATE_FILE_MODE = 0o600;

/** mkdir -p with owner-only permissions for the directories it creates. */
export function mkdirPrivateSync(dir: string): void {
  mkdirSync(dir, { recursive: true, mode: PRIVATE_DIR_MODE });
}

/**
 * Creates `path` empty with owner-only permissions unless it exists. For files that another
 * library creates with its own default mode: SQLite makes a new database 0644 (less the umask)
 * but keeps the mode of an existing file, and gives its -wal and -shm files the database's mode.
 */
export function ensurePrivateFileSync(path: string): void {
  closeSync(openSync(path, 'a', PRIVATE_FILE_MODE));
}
