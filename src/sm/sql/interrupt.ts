/**
 * Deadlines for SQLite connections: the `hq_interrupt` loadable extension (native/interrupt)
 * runs one watchdog thread per process that calls `sqlite3_interrupt()` on a connection whose
 * deadline has passed. better-sqlite3 offers no interrupt of its own and is built without the
 * progress callback, but `sqlite3_interrupt()` is compiled in and the VDBE checks for it at the
 * bottom of every loop, and it is safe to call from another thread.
 *
 * The extension is compiled when the package is installed (scripts/build-native.mjs). Without a
 * C compiler it is missing: `watchConnection` then returns null and callers fall back (see
 * read-pool.ts and docs/ARCHITECTURE.md, "Reads and writes that never end").
 */
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
import { assert } from '../../lib/assert.js';
import { HiqliteError } from '../../lib/errors.js';
import { SQLITE_LENGTH_MAX } from './command.js';

// SQLite derives the entry point from the file name: sqlite3_hqinterrupt_init.
function libraryFile(): string {
  return process.platform === 'darwin' ? 'hq_interrupt.dylib' : 'hq_interrupt.so';
}

let cachedPath: string | null | undefined;
/** Why no copy of the extension could be loaded (for extensionMissing). */
let unloadable: string | null = null;

/**
 * The extension: the copy compiled at install (native/build), else the prebuilt copy the package
 * ships for this platform (native/prebuilt/<platform>-<arch>: Linux x86-64, for installs without
 * a C compiler), the first that loads; null when none does. This file sits three levels below the
 * package root both as source (src/sm/sql) and compiled (dist/sm/sql).
 */
export function interruptExtensionPath(): string | null {
  if (cachedPath !== undefined) return cachedPath;
  const file = libraryFile();
  const candidates = [
    `../../../native/build/${file}`,
    `../../../native/prebuilt/${process.platform}-${process.arch}/${file}`,
  ].map((relative) => fileURLToPath(new URL(relative, import.meta.url)));
  cachedPath = null;
  for (const path of candidates) {
    if (!existsSync(path)) continue;
    const problem = loadProblem(path);
    if (problem === null) {
      cachedPath = path;
      break;
    }
    unloadable = `${path}: ${problem}`;
  }
  return cachedPath;
}

/** Why `path` does not load as the extension (another libc, an older build), or null. */
function loadProblem(path: string): string | null {
  const db = new Database(':memory:');
  try {
    db.loadExtension(path);
    db.prepare('SELECT hq_limit(?, ?)');
    return null;
  } catch (e) {
    return e instanceof Error ? e.message : String(e);
  } finally {
    db.close();
  }
}

/**
 * Why a SQL node cannot start without the extension: it sets each write's value limit
 * (`sql_value_bytes_max`) on the writer, and a replica that could not would apply writes the
 * others refuse.
 */
export function extensionMissing(): HiqliteError {
  const file = `native/build/${libraryFile()}`;
  const tried = unloadable === null ? '' : ` (a copy that would not load: ${unloadable})`;
  return new HiqliteError(
    'HQL_INVALID_CONFIG',
    `hiqlite's SQLite extension (${file} in the hiqlite package) was not built when hiqlite was installed, and the package has no prebuilt copy for ${process.platform}-${process.arch} that loads here${tried}: a node with SQLite needs it (it bounds every write's values alike on every replica, and stops queries at their deadline). Install a C compiler (Debian/Ubuntu: apt-get install build-essential; Alpine: apk add build-base) and run \`npm rebuild hiqlite\`; allow hiqlite's install script where npm blocks install scripts`,
    { retryable: false },
  );
}

/** A connection registered with the watchdog. */
export interface ConnectionWatch {
  /** Process-wide id of the connection (for `interruptConnection`). */
  readonly id: number;
  /** The running (or next) statement is interrupted once `ms` milliseconds have passed. */
  arm(ms: number): void;
  disarm(): void;
  /**
   * Sets the connection's SQLITE_LIMIT_LENGTH: the largest string, blob or row (in bytes) a
   * statement may make or read there; beyond it the statement fails with SQLITE_TOOBIG.
   * Between 1 and `SQLITE_LENGTH_MAX`.
   */
  limitLength(bytes: number): void;
  /** The connection's SQLITE_LIMIT_LENGTH now (better-sqlite3 opens it at V8's longest string). */
  lengthLimit(): number;
}

/**
 * Loads the extension on `db` and latches a random token on it, before any other SQL runs
 * there: SQL sent by a user cannot call the functions without the token (so cannot disarm its
 * own deadline), and they cannot be used from triggers or views (SQLITE_DIRECTONLY).
 * Returns null when the extension is not available.
 */
export function watchConnection(db: Database.Database): ConnectionWatch | null {
  const path = interruptExtensionPath();
  if (path === null) return null;
  db.loadExtension(path);
  const token = randomBytes(8).readBigInt64LE();
  const id = Number(db.prepare('SELECT hq_watch(?)').pluck().safeIntegers(true).get(token) as bigint);
  const deadline = db.prepare('SELECT hq_deadline(?, ?)').pluck().safeIntegers(true);
  // interruptExtensionPath() only returns a copy whose hq_limit prepares (an older build is skipped).
  const limit = db.prepare('SELECT hq_limit(?, ?)').pluck().safeIntegers(true);
  return {
    id,
    arm: (ms) => {
      deadline.get(token, BigInt(Math.max(0, Math.ceil(ms))));
    },
    disarm: () => {
      // Past its deadline the watchdog interrupts the connection again every 5 ms until it is
      // disarmed, and may interrupt this very statement: the next one starts with the flag
      // cleared. An interrupt lands within a few instructions of a 5 ms period: a second
      // attempt succeeds; the bound is for what cannot happen.
      for (let attempt = 1; ; attempt++) {
        try {
          deadline.get(token, -1n);
          return;
        } catch (e) {
          if (!isInterrupted(e) || attempt >= DISARM_ATTEMPTS) throw e;
        }
      }
    },
    limitLength: (bytes) => {
      assert(Number.isInteger(bytes) && bytes >= 1 && bytes <= SQLITE_LENGTH_MAX, `length limit ${bytes}`);
      limit.get(token, BigInt(bytes));
    },
    lengthLimit: () => Number(limit.get(token, -1n) as bigint),
  };
}

/** Attempts of `disarm` (ConnectionWatch) that an interrupt may spoil before it gives up. */
const DISARM_ATTEMPTS = 10;

let helper: { db: Database.Database; token: bigint } | null = null;

/**
 * Interrupts the statement running on the watched connection `id` (in any thread) now; id 0
 * interrupts every watched connection of the process. Returns false when the extension is not
 * available. A connection with no statement running is not affected.
 */
export function interruptConnection(id: number): boolean {
  return interruptWatched(id) !== null;
}

/** As interruptConnection; returns how many open watched connections it interrupted (null: no extension). */
function interruptWatched(id: number): number | null {
  const path = interruptExtensionPath();
  if (path === null) return null;
  if (helper === null) {
    const db = new Database(':memory:');
    db.loadExtension(path);
    const token = randomBytes(8).readBigInt64LE();
    db.prepare('SELECT hq_watch(?)').safeIntegers(true).get(token);
    helper = { db, token };
  }
  const n = helper.db
    .prepare('SELECT hq_interrupt(?, ?)')
    .safeIntegers(true)
    .pluck()
    .get(helper.token, BigInt(id)) as bigint;
  return Number(n);
}

let exitHookInstalled = false;

/**
 * How long the exiting thread waits after interrupting, before Node stops the worker threads.
 * An interrupted statement returns to its thread's JavaScript, which builds the SqliteError; if
 * Node terminates that thread's isolate at the same moment, better-sqlite3 cannot create the
 * error and aborts the whole process (a V8 fatal error, exit code 134, seen in
 * test/node/worker-thread.test.ts under load). Waiting lets the thread take the error first. A
 * bounded wait, not a handshake: the thread that runs the statement may belong to a worker the
 * exiting thread did not start (the SQLite writer of the node's own thread).
 */
const EXIT_INTERRUPT_SETTLE_MS = 100;

/**
 * Node joins worker threads when the process exits: one stuck in a SQLite statement would make
 * `process.exit()` hang. On exit, every watched statement of the process is interrupted, and the
 * exit waits `EXIT_INTERRUPT_SETTLE_MS` for the threads to take their interruption.
 */
export function interruptAllOnExit(): void {
  if (exitHookInstalled || interruptExtensionPath() === null) return;
  exitHookInstalled = true;
  process.once('exit', () => {
    try {
      // Only while connections are open (a node closed before the exit has none: no wait).
      if ((interruptWatched(0) ?? 0) > 0) {
        Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, EXIT_INTERRUPT_SETTLE_MS);
      }
    } catch {
      // Exiting anyway.
    }
  });
}

/** True for the error SQLite raises in a statement that was interrupted. */
export function isInterrupted(e: unknown): boolean {
  return e instanceof Database.SqliteError && e.code === 'SQLITE_INTERRUPT';
}
