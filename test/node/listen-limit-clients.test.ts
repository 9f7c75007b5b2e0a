/**
 * One listener more than `cache_listeners_max` is refused with HQL_OVERLOADED on every client
 * alike. A remote client retried it for its resume window (30 s), receiving nothing and saying
 * nothing, where the embedded node and HTTP refuse at once (found by an outside probe).
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import { nodeAndRemote } from '../support/one-node-config.js';

/** Well inside the remote client's resume window (30 s): refused, not retried. */
const ANSWER_WITHIN_MS = 10_000;

async function firstOutcome(it: AsyncIterator<unknown>): Promise<string> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<string>((resolve) => {
    timer = setTimeout(() => resolve(`no answer within ${ANSWER_WITHIN_MS} ms`), ANSWER_WITHIN_MS);
  });
  const outcome = it.next().then(
    () => 'a notification',
    (e: { code?: string; message?: string }) => `${e.code}: ${e.message}`,
  );
  try {
    return await Promise.race([outcome, late]);
  } finally {
    clearTimeout(timer);
  }
}

for (const who of ['embedded', 'remote'] as const) {
  describe(`one listener more than cache_listeners_max (${who} client)`, () => {
    const f = nodeAndRemote('hq-listen-limit-', { cacheListenersMax: 1 });

    test('is refused at once with HQL_OVERLOADED', async () => {
      const { node, remote } = f;
      const first = node.listen('held')[Symbol.asyncIterator]();
      // The first one holds the slot once it delivered a notification.
      await node.notify('held', 1);
      assert.deepEqual((await first.next()).value?.payload, 1);
      const db = who === 'embedded' ? node : remote;
      const second = db.listen('held')[Symbol.asyncIterator]();
      const outcome = await firstOutcome(second);
      assert.match(outcome, /^HQL_OVERLOADED: .*cache_listeners_max/);
      await first.return?.();
      await second.return?.();
    });

    test('a slot given back by return() is free for the next listen() at once', async () => {
      // The slot is the node's: return() must free it before a listen() made right after it is
      // counted (found by an outside probe: HQL_OVERLOADED right after return() resolved; with the
      // node on its own thread the listen crossed before the unlisten).
      const db = who === 'embedded' ? f.node : f.remote;
      for (let round = 0; round < 3; round++) {
        const it = db.listen(`turn-${round}`)[Symbol.asyncIterator]();
        const got = it.next();
        // Notified until it arrives: a notification sent before the listener is registered on
        // the node is not its to receive.
        const payload = await untilSettled(got, () => f.node.notify(`turn-${round}`, round));
        assert.equal(payload, round, `round ${round}`);
        await it.return?.();
      }
    });

    test('a listener returned before it reached its node frees its slot too', async () => {
      const db = who === 'embedded' ? f.node : f.remote;
      for (let round = 0; round < 3; round++) {
        // return() at once, while the listen is still on its way (a remote one: not yet answered).
        await db.listen(`early-${round}`)[Symbol.asyncIterator]().return?.();
        const it = db.listen(`after-${round}`)[Symbol.asyncIterator]();
        const payload = await untilSettled(it.next(), () => f.node.notify(`after-${round}`, round));
        assert.equal(payload, round, `round ${round}`);
        await it.return?.();
      }
    });
  });
}

/** What `got` gives, calling `poke` every 50 ms until it settles (bounded). */
async function untilSettled(
  got: Promise<IteratorResult<{ payload: unknown }>>,
  poke: () => Promise<unknown>,
): Promise<unknown> {
  let settled = false;
  const outcome = got.then(
    (r) => r.value?.payload,
    (e: { code?: string; message?: string }) => `${e.code}: ${e.message}`,
  );
  void outcome.finally(() => {
    settled = true;
  });
  const until = Date.now() + ANSWER_WITHIN_MS;
  while (!settled && Date.now() < until) {
    await poke();
    await Promise.race([outcome, new Promise((r) => setTimeout(r, 50))]);
  }
  assert.ok(settled, `no notification within ${ANSWER_WITHIN_MS} ms`);
  return outcome;
}
