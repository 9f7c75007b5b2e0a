/**
 * Permissions of everything a node writes under its data directory: the database holds the
 * application's data and the directory holds the cluster id, so neither is readable by other
 * users of the machine, whatever the process's umask (generated configs are already 0600).
 */
/** Directories a node creates: owner only. */
export const PRIVATE_DIR_MODE = 0o700;
/** Files a node creates: owner read and write only. */
export const PRIVATE_FILE_MODE = 0o600;
