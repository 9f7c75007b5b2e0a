/**
 * The dashboard in a real browser (Debian's chromium driven by playwright-core) against a real
 * 3-node cluster of `hiqlite serve` processes with TLS on the API port and the default cookie
 * (`__Host-`, Secure): a wrong password is refused, login works, a write from the console shows
 * its result (and reaches every node), a query shows its rows, cache entries put through the
 * client API show on the Caches page (values decoded, TTLs counting down), a backup created from
 * the Backups page is listed in the S3 bucket (a fake one, test/support/s3-server.ts), the cluster
 * page shows three members and the leader, a killed node shows as down, logout ends the session.
 *
 * A screenshot of each page goes to HQL_SCREENSHOT_DIR (docs/images for the README) or to a
 * temporary folder. Without chromium the test fails and says how to install it: it is never
 * skipped (`.ci/run` installs Debian's chromium).
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { accessSync, constants, mkdirSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, join, resolve } from 'node:path';
import { test } from 'node:test';
import { type Browser, chromium } from 'playwright-core';
import { hashPassword } from '../../src/dashboard/password.js';
import { TestCluster } from '../cluster/harness.js';
import { type FakeS3, startTestS3, testS3Toml } from '../support/s3-server.js';

/** What the functions run in the page use of its DOM (this program has no DOM types). */
interface PageElement {
  readonly textContent: string | null;
  getAttribute(name: string): string | null;
}
declare const document: {
  readonly cookie: string;
  querySelector(selector: string): PageElement | null;
  querySelectorAll(selector: string): { readonly length: number };
};

const PASSWORD = 'correct-horse-battery-staple';
/** Debian's chromium needs these to run headless in a container without phoning home. */
const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

/** `HQL_CHROMIUM`, else `chromium` or `chromium-browser` on the PATH; null when none exists. */
function findChromium(): string | null {
  const candidates = [
    ...(process.env.HQL_CHROMIUM === undefined ? [] : [process.env.HQL_CHROMIUM]),
    ...(process.env.PATH ?? '')
      .split(delimiter)
      .filter((d) => d.length > 0)
      .flatMap((d) => [join(d, 'chromium'), join(d, 'chromium-browser')]),
  ];
  for (const c of candidates) {
    try {
      accessSync(c, constants.X_OK);
      return c;
    } catch {
      // next
    }
  }
  return null;
}

function screenshotDir(): string {
  const dir = process.env.HQL_SCREENSHOT_DIR;
  if (dir === undefined || dir === '') return mkdtempSync(join(tmpdir(), 'hql-dashboard-shots-'));
  mkdirSync(resolve(dir), { recursive: true });
  return resolve(dir);
}

test('the dashboard in chromium against a 3-node cluster', { timeout: 120_000 }, async () => {
  const executablePath = findChromium();
  if (executablePath === null)
    assert.fail(
      "chromium is not installed: the dashboard browser test needs Debian's chromium (apt-get install -y chromium, as .ci/run does), or HQL_CHROMIUM=<path to a chromium binary>",
    );
  const shots = screenshotDir();
  const phc = await hashPassword(PASSWORD, { memoryKib: 4096, iterations: 1, parallelism: 1 });
  let cluster: TestCluster | null = null;
  let browser: Browser | null = null;
  let s3: FakeS3 | null = null;
  try {
    s3 = await startTestS3();
    const toml = [
      `password_dashboard = "${phc}"`,
      `enc_keys = ["k1/${randomBytes(32).toString('base64')}"]`,
      'enc_key_active = "k1"',
      ...testS3Toml(s3),
    ].join('\n');
    [cluster, browser] = await Promise.all([
      TestCluster.create({ nodes: 3, tls: true, toml }),
      chromium.launch({ executablePath, args: CHROMIUM_ARGS }),
    ]);
    const c = cluster;
    const base = `https://127.0.0.1:${c.node(1).apiPort}`;
    const context = await browser.newContext({
      ignoreHTTPSErrors: true,
      viewport: { width: 1180, height: 660 },
    });
    const page = await context.newPage();
    page.setDefaultTimeout(15_000);
    const problems: string[] = [];
    page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
    page.on('console', (m) => {
      // A 401 (no session yet), the refused login and the query with an error are resource errors
      // the browser logs: expected.
      if (m.type() === 'error' && !/status of (400|401|429)/.test(m.text()))
        problems.push(`console: ${m.text()}`);
    });

    // Some traffic through node 1 for the metrics page, while the rest runs.
    const client = await c.client([1]);
    await client.execute('CREATE TABLE load (id INTEGER PRIMARY KEY, v TEXT)');
    let trafficError: unknown = null;
    const traffic = (async () => {
      for (let i = 0; i < 150; i++) {
        await client.execute('INSERT INTO load (v) VALUES (?)', [`v${i}`]);
        await client.query('SELECT count(*) AS n FROM load');
        await new Promise((r) => setTimeout(r, 15));
      }
    })().catch((e: unknown) => {
      trafficError = e;
    });

    // Login: a wrong password is refused; the right one opens a session in a __Host- cookie.
    await page.goto(`${base}/dashboard`);
    await page.locator('#password').waitFor();
    await page.screenshot({ path: join(shots, 'dashboard-login.png') });
    await page.fill('#password', 'not-the-password');
    await page.click('button[type=submit]');
    assert.match((await page.locator('#login-error').textContent()) ?? '', /Wrong password/);
    assert.equal(await page.locator('#logout').count(), 0);
    await page.fill('#password', PASSWORD);
    await page.click('button[type=submit]');
    await page.locator('#logout').waitFor();
    const cookies = await context.cookies(base);
    const session = cookies.find((k) => k.name === '__Host-hiqlite-session');
    assert.ok(session !== undefined, `cookies: ${cookies.map((k) => k.name).join(', ')}`);
    assert.deepEqual(
      [session.httpOnly, session.secure, session.sameSite, session.path],
      [true, true, 'Strict', '/'],
    );
    assert.equal(await page.evaluate(() => document.cookie), '', 'the page cannot read the session cookie');

    // Cluster: three members up, and the leader the nodes agree on.
    const leader = await c.leader();
    await page.waitForFunction(
      (id) =>
        document.querySelectorAll('#members tbody tr[data-state=up]').length === 3 &&
        document.querySelector('#leader-id')?.textContent === `node ${id}` &&
        document.querySelector(`#members tr[data-node="${id}"] .tag.leader`) !== null,
      leader,
    );
    // Each member's clock against the cluster's (the same machine's clock here: near 0).
    await page.waitForFunction(
      () =>
        document.querySelectorAll('#members tbody td[data-clock-offset]:not([data-clock-offset=""])')
          .length === 3,
    );
    const offsets = await page.$$eval('#members tbody td[data-clock-offset]', (tds) =>
      tds.map((td) => Number(td.getAttribute('data-clock-offset'))),
    );
    assert.ok(
      offsets.every((o) => Math.abs(o) < 1000),
      `clock offsets near 0: ${offsets.join(', ')}`,
    );

    // Console: a write after its confirmation shows rowsAffected and logIndex; a query shows rows.
    await page.click('a[data-page=console]');
    const write = async (sql: string): Promise<{ rows: number; logIndex: number }> => {
      // The result of the previous write stays on the page until this one's arrives.
      const before = await page.evaluate(() => document.querySelector('#write-result')?.textContent ?? null);
      await page.fill('#sql', sql);
      await page.click('#run-write');
      await page.locator('#confirm-write').waitFor();
      await page.click('#confirm-write-yes');
      await page.waitForFunction((prev) => {
        const t = document.querySelector('#write-result')?.textContent ?? null;
        return t !== null && t !== prev && /logIndex \d+/.test(t);
      }, before);
      await page.waitForFunction(() => document.querySelector('#confirm-write') === null);
      const text = (await page.locator('#write-result').textContent()) ?? '';
      const m = /rowsAffected (\d+) · logIndex (\d+)/.exec(text);
      assert.ok(m !== null, `write result: ${text}`);
      return { rows: Number(m[1]), logIndex: Number(m[2]) };
    };
    await write('CREATE TABLE fruit (id INTEGER PRIMARY KEY, name TEXT NOT NULL)');
    const inserted = await write("INSERT INTO fruit (name) VALUES ('apple'), ('banana'), ('cherry')");
    assert.equal(inserted.rows, 3);
    // The write went through Raft: every node has it at that log index.
    const onNodes = await c.rowsOn<{ name: string }>('SELECT name FROM fruit ORDER BY id', {
      minIndex: inserted.logIndex,
    });
    for (const [id, rows] of onNodes)
      assert.deepEqual(
        rows.map((r) => r.name),
        ['apple', 'banana', 'cherry'],
        `node ${id}`,
      );
    await page.fill('#sql', 'SELECT id, name FROM fruit ORDER BY id');
    await page.selectOption('#consistency', 'linearizable');
    await page.click('#run-query');
    await page.locator('#query-rows table').waitFor();
    const cells = await page.locator('#query-rows tbody td').allTextContents();
    assert.deepEqual(cells, ['1', '1', 'apple', '2', '2', 'banana', '3', '3', 'cherry']);
    // An error shows its code.
    await page.fill('#sql', 'SELECT * FROM no_such_table');
    await page.click('#run-query');
    assert.match((await page.locator('#result-error').textContent()) ?? '', /^HQL_SQL/);
    await page.fill('#sql', 'SELECT id, name FROM fruit ORDER BY id');
    await page.click('#run-query');
    await page.locator('#query-rows table').waitFor();
    assert.equal(await page.locator('#history li').count(), 5);
    await page.screenshot({ path: join(shots, 'dashboard-console.png') });

    // Tables: the schema and the rows of a table.
    await page.click('a[data-page=tables]');
    await page.click('[data-object=fruit]');
    assert.match((await page.locator('#schema-sql').textContent()) ?? '', /CREATE TABLE fruit/);
    await page.locator('#browse-rows table').waitFor();
    assert.ok((await page.locator('#browse-rows').textContent())?.includes('cherry'));
    await page.screenshot({ path: join(shots, 'dashboard-tables.png') });

    // Caches: entries put through the client API, seen on node 1's replica.
    const fruit = client.cache<unknown>('fruit');
    await fruit.put('apple', { color: 'red', grams: 180, tags: ['crisp', 'sweet'] });
    await fruit.put('banana', { color: 'yellow', grams: 120 }, { ttlMs: 3_600_000 });
    await fruit.put('cherry', new Uint8Array([0xde, 0xad, 0xbe, 0xef]));
    await client.cache<string>('sessions').put('s-1', 'alice', { ttlMs: 600_000 });
    await client.counter('visits').add('home', 42n);
    const lock = await client.lock('nightly-job', { leaseMs: 600_000 });
    const listener = client.listen('orders');
    const heard = listener.next();
    await client.notify('orders', { id: 1 });
    assert.deepEqual((await heard).value?.payload, { id: 1 });
    await page.click('a[data-page=caches]');
    await page.waitForFunction(
      () =>
        document.querySelector('#locks-held')?.textContent === '1' &&
        document.querySelector('#listeners')?.textContent === '1',
    );
    await page.click('[data-cache=fruit]');
    await page.locator('#cache-keys tr[data-key=cherry]').waitFor();
    const keyRows = await page.locator('#cache-keys tbody tr').allTextContents();
    assert.equal(keyRows.length, 3, keyRows.join(' | '));
    assert.match(keyRows[0] ?? '', /apple\{"color":"red","grams":180,"tags":\["crisp","sweet"\]\}\s*none/);
    assert.match(keyRows[1] ?? '', /banana.*"yellow".*(59|60) min/);
    assert.match(keyRows[2] ?? '', /cherry.*x'deadbeef'.*\(4 B\)/);
    await page.screenshot({ path: join(shots, 'dashboard-caches.png') });
    await lock.release();
    await listener[Symbol.asyncDispose]();

    // Backups: created on the leader after a confirmation, then listed in the bucket.
    await page.click('a[data-page=backups]');
    await page.locator('#backups-s3').waitFor();
    await page.click('#create-backup');
    await page.locator('#confirm-backup').waitFor();
    await page.click('#confirm-backup-yes');
    await page.locator('#backup-result').waitFor({ timeout: 30_000 });
    const backupName = /backup_\S+\.hqbak/.exec(
      (await page.locator('#backup-result').textContent()) ?? '',
    )?.[0];
    assert.ok(backupName !== undefined, 'the result names the backup');
    await page.locator(`#backups-s3 tr[data-backup="${backupName}"]`).waitFor();
    // The leader wrote it to its folder: node 1's own, or the leader's that a follower shows.
    const folder = leader === 1 ? '#backups-local' : '#backups-leader';
    await page.locator(`${folder} tr[data-backup="${backupName}"]`).waitFor();
    await page.screenshot({ path: join(shots, 'dashboard-backups.png') });

    // Metrics: charts of the last minutes of node 1.
    await traffic;
    assert.equal(trafficError, null);
    await page.click('a[data-page=metrics]');
    await page.waitForFunction(
      () => (document.querySelector('#chart-writes path.line')?.getAttribute('d') ?? '').length > 20,
    );
    await page.screenshot({ path: join(shots, 'dashboard-metrics.png') });

    // A killed node shows as down within seconds, the others stay up.
    const victim = leader === 2 ? 3 : 2;
    await page.click('a[data-page=cluster]');
    await page.waitForFunction(
      () => document.querySelectorAll('#members tbody tr[data-state=up]').length === 3,
    );
    await c.kill(victim);
    await page.waitForFunction(
      (id) => document.querySelector(`#members tr[data-node="${id}"]`)?.getAttribute('data-state') === 'down',
      victim,
      { timeout: 10_000 },
    );
    assert.equal(await page.locator('#members tbody tr[data-state=up]').count(), 2);
    await page.screenshot({ path: join(shots, 'dashboard-cluster.png') });

    // Logout: back to the login form, and the session is gone on the node.
    await page.click('#logout');
    await page.locator('#password').waitFor();
    const after = await page.evaluate(async () => (await fetch('/dashboard/api/session')).status);
    assert.equal(after, 401);
    assert.deepEqual(problems, [], 'no page errors, no CSP violations');
    process.stderr.write(`dashboard screenshots: ${shots}\n`);
  } finally {
    await browser?.close().catch(() => {});
    await cluster?.close();
    await s3?.close();
  }
});
