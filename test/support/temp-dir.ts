/** A fresh folder for a describe block: made before its tests (handed to `use`), removed after. */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before } from 'node:test';

export function withTempDir(prefix: string, use: (dir: string) => void): void {
  let dir: string | null = null;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), prefix));
    use(dir);
  });
  after(() => {
    if (dir !== null) rmSync(dir, { recursive: true, force: true });
  });
}
