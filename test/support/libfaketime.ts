/**
 * Processes whose wall clock is stepped from a file, with Debian's libfaketime (package
 * `faketime`, installed by .ci/run): every read of the wall clock in the process (ours or a
 * library's) is the real time plus the offset written in the file, re-read at most once a second;
 * the monotonic clock stays real, as a stepped system clock leaves it.
 */
import { existsSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/** libfaketimeMT (the thread-safe one) of Debian's `faketime` package, whatever the architecture. */
export function libfaketime(): string {
  const roots = ['/usr/lib', ...readdirSync('/usr/lib').map((d) => join('/usr/lib', d))];
  for (const r of roots) {
    const p = join(r, 'faketime', 'libfaketimeMT.so.1');
    if (existsSync(p)) return p;
  }
  throw new Error('libfaketime not found: install the Debian package faketime (apt-get install faketime)');
}

/** The environment of a process whose wall clock is offset by what `clockFile` says. */
export function faketimeEnv(clockFile: string): Record<string, string> {
  return {
    LD_PRELOAD: libfaketime(),
    FAKETIME_TIMESTAMP_FILE: clockFile,
    FAKETIME_CACHE_DURATION: '1',
    FAKETIME_DONT_FAKE_MONOTONIC: '1',
  };
}

/** Sets the offset in `clockFile` (taken by the process within a second). */
export function writeClockOffset(clockFile: string, offsetMs: number): void {
  // libfaketime's relative format: a sign, a number and a unit; seconds with a fraction.
  const s = offsetMs / 1000;
  writeFileSync(clockFile, `${s >= 0 ? '+' : ''}${s}s\n`);
}
