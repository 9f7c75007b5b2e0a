/**
 * The link proxy of the fault suite: it forwards both ways, refuses, blackholes (and resumes or
 * resets on heal), delays chunks in order, and one ordered link never affects the other.
 */
import assert from 'node:assert/strict';
import { createServer, type Server, Socket } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { ProxyNet } from './network.js';
import { LinkProxy } from './proxy.js';

/** An echo server: what the proxy forwards comes back through it. */
async function echoServer(): Promise<{ server: Server; port: number }> {
  const server = createServer((s) => {
    s.on('error', () => {});
    s.pipe(s);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  return { server, port: (server.address() as { port: number }).port };
}

function open(port: number): Promise<Socket> {
  return new Promise((ok, fail) => {
    const s = new Socket();
    s.once('error', fail);
    s.connect(port, '127.0.0.1', () => ok(s));
  });
}

/** Resolves with the bytes received within `ms`, or with what arrived before the socket closed. */
function receive(s: Socket, bytes: number, ms: number): Promise<{ data: string; closed: boolean }> {
  return new Promise((resolve) => {
    let data = '';
    let closed = false;
    const done = () => {
      clearTimeout(timer);
      s.off('data', onData);
      resolve({ data, closed });
    };
    const onData = (d: Buffer) => {
      data += d.toString();
      if (data.length >= bytes) done();
    };
    const timer = setTimeout(done, ms);
    s.on('data', onData);
    s.once('close', () => {
      closed = true;
      done();
    });
    s.on('error', () => {});
  });
}

describe('LinkProxy', () => {
  let echo: { server: Server; port: number };
  before(async () => {
    echo = await echoServer();
  });
  after(async () => {
    await new Promise((r) => echo.server.close(r));
  });

  test('pass forwards bytes both ways', async () => {
    const p = new LinkProxy('t', { host: '127.0.0.1', port: echo.port });
    await p.listen();
    const s = await open(p.port);
    s.write('hello');
    assert.deepEqual(await receive(s, 5, 2000), { data: 'hello', closed: false });
    s.destroy();
    await p.close();
  });

  test('refuse resets open connections and new ones', async () => {
    const p = new LinkProxy('t', { host: '127.0.0.1', port: echo.port });
    await p.listen();
    const s = await open(p.port);
    const closed = receive(s, 1, 2000);
    p.setMode('refuse');
    assert.equal((await closed).closed, true);
    const s2 = await open(p.port).catch(() => null);
    if (s2 !== null) {
      s2.write('x');
      const r = await receive(s2, 1, 2000);
      assert.equal(r.data, '');
      assert.equal(r.closed, true);
    }
    await p.close();
  });

  test('blackhole delivers nothing and keeps connections open; resuming delivers late', async () => {
    const p = new LinkProxy('t', { host: '127.0.0.1', port: echo.port });
    await p.listen();
    const s = await open(p.port);
    s.write('a');
    assert.equal((await receive(s, 1, 2000)).data, 'a');
    p.setMode('blackhole');
    s.write('b');
    assert.deepEqual(await receive(s, 1, 300), { data: '', closed: false });
    const late = await open(p.port); // accepted and held
    late.write('c');
    assert.deepEqual(await receive(late, 1, 300), { data: '', closed: false });
    const both = Promise.all([receive(s, 1, 2000), receive(late, 1, 2000)]);
    p.setMode('pass', { resetFrozen: false });
    const [rs, rl] = await both;
    assert.equal(rs.data, 'b');
    assert.equal(rl.data, 'c');
    s.destroy();
    late.destroy();
    await p.close();
  });

  test('healing a blackhole with reset closes the frozen connections', async () => {
    const p = new LinkProxy('t', { host: '127.0.0.1', port: echo.port });
    await p.listen();
    const s = await open(p.port);
    p.setMode('blackhole');
    const r = receive(s, 1, 2000);
    p.setMode('pass', { resetFrozen: true });
    assert.equal((await r).closed, true);
    const s2 = await open(p.port);
    s2.write('d');
    assert.equal((await receive(s2, 1, 2000)).data, 'd');
    s2.destroy();
    await p.close();
  });

  test('a delay keeps the order of chunks', async () => {
    const p = new LinkProxy('t', { host: '127.0.0.1', port: echo.port });
    await p.listen();
    const s = await open(p.port);
    p.setDelay(80);
    s.write('1');
    p.setDelay(5); // a shorter delay later must not overtake
    await new Promise((r) => setTimeout(r, 10));
    s.write('2');
    assert.equal((await receive(s, 2, 3000)).data, '12');
    s.destroy();
    await p.close();
  });
});

describe('ProxyNet', () => {
  test('cutting m -> n leaves n -> m passing', async () => {
    const a = await echoServer();
    const b = await echoServer();
    const net = await ProxyNet.create([
      { id: 1, raftPort: a.port, apiPort: a.port },
      { id: 2, raftPort: b.port, apiPort: b.port },
    ]);
    try {
      net.cut(1, 2, 'refuse');
      const to2 = await open(net.link(1, 2).raft.port).catch(() => null);
      if (to2 !== null) {
        to2.write('x');
        assert.equal((await receive(to2, 1, 1000)).data, '');
      }
      const to1 = await open(net.link(2, 1).raft.port);
      to1.write('y');
      assert.equal((await receive(to1, 1, 2000)).data, 'y');
      to1.destroy();
      assert.deepEqual(net.describe(), ['1->2 refuse']);
      net.healAll({ resetFrozen: true });
      assert.deepEqual(net.describe(), []);
    } finally {
      await net.close();
      await new Promise((r) => a.server.close(r));
      await new Promise((r) => b.server.close(r));
    }
  });
});
