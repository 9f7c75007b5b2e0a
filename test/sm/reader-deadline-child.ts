/**
 * Child of reader-deadline.test.ts: endless reads with short limits on one interruptible
 * reader, each followed by a read without a limit, counted by outcome (JSON on stdout). A lost
 * interrupt makes a read run without end: the parent sees no answer and kills this process.
 */
import { SqlReader } from '../../src/sm/sql/reader.js';
import { SqlStateMachine } from '../../src/sm/sql/state-machine.js';
import { makeTempDir } from './sql-test-helpers.js';

const { dir, cleanup } = makeTempDir();
const sm = SqlStateMachine.open(dir);
const reader = SqlReader.open(sm.path, { applied: sm.applied, interruptible: true });
if (reader.connectionId === null) throw new Error('the interrupt extension is not built');
const endless = 'WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT count(*) AS n FROM c';
const finite =
  'WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c LIMIT 20000) SELECT count(*) AS n FROM c';
const outcomes: Record<string, number> = {};
const count = (k: string) => {
  outcomes[k] = (outcomes[k] ?? 0) + 1;
};
for (const timeoutMs of [0, 1, 2, 3]) {
  for (let i = 0; i < 100; i++) {
    try {
      reader.query(endless, [], { timeoutMs });
      count('endless: answered');
    } catch (e) {
      count(`endless: ${(e as { code?: string }).code ?? String(e)}`);
    }
    // The connection is disarmed: a read after it runs to its end.
    const rows = reader.query(finite);
    count(rows[0]?.n === 20000 ? 'after: ok' : `after: ${JSON.stringify(rows)}`);
  }
}
reader.close();
sm.close();
cleanup();
process.stdout.write(`${JSON.stringify(outcomes)}\n`);
