/**
 * The project's own command-line tools answer `--help` with their usage (exit 0) and an unknown
 * option with the reason and the usage (exit 2), never a stack trace (test/support/cli-args.ts).
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { describe, test } from 'node:test';

const TOOLS = [
  { file: 'test/sim/cli.ts', usage: 'npm run sim -- ' },
  { file: 'test/faults/cli.ts', usage: 'npm run test:faults -- ' },
  { file: 'bench/run.ts', usage: 'npm run bench -- ' },
  { file: 'bench/cache-run.ts', usage: 'npm run bench:cache -- ' },
];

function run(file: string, arg: string) {
  return spawnSync(process.execPath, ['--import', 'tsx', file, arg], { encoding: 'utf8', timeout: 60_000 });
}

describe('development command-line tools', () => {
  for (const t of TOOLS) {
    test(`${t.file}: --help prints the usage; an unknown option exits 2 with the reason`, () => {
      const help = run(t.file, '--help');
      assert.equal(help.status, 0, help.stderr);
      assert.ok(help.stdout.startsWith(t.usage), help.stdout);
      const bad = run(t.file, '--no-such-option');
      assert.equal(bad.status, 2, bad.stderr);
      assert.match(bad.stderr, /Unknown option '--no-such-option'/);
      assert.ok(bad.stderr.includes(t.usage), bad.stderr);
      assert.doesNotMatch(bad.stderr, /at .*\(.*:\d+:\d+\)/, 'no stack trace');
    });
  }

  test('npm run bench -- --help answers before building the suites', () => {
    const help = run('bench/compiled.mjs', '--help');
    assert.equal(help.status, 0, help.stderr);
    assert.match(help.stdout, /^npm run bench \[-- options\]/);
    assert.match(help.stdout, /npm run bench:cache/);
  });
});
