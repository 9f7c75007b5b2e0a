/**
 * The gate of unauthenticated connections (src/transport/handshake-gate.ts): beyond pendingMax
 * the oldest is closed, but only once it had its grace, so a burst of real clients is not reset
 * before their first bytes are read; the deadline closes whatever never authenticates.
 */
import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import type { Socket } from 'node:net';
import { describe, test } from 'node:test';
import { HandshakeGate } from '../../src/transport/handshake-gate.js';
import type { Timers } from '../../src/transport/timers.js';

/** Timers that run when the test moves time on. */
class ManualTimers implements Timers {
  nowMs = 0;
  private readonly due = new Map<number, { at: number; fn: () => void }>();
  private next = 1;
  setTimeout(fn: () => void, ms: number): unknown {
    const id = this.next++;
    this.due.set(id, { at: this.nowMs + ms, fn });
    return id;
  }
  clearTimeout(handle: unknown): void {
    this.due.delete(handle as number);
  }
  /** Runs every timer due by now + ms, in order (bounded: each run removes one). */
  advance(ms: number): void {
    const until = this.nowMs + ms;
    for (;;) {
      const first = [...this.due].sort((a, b) => a[1].at - b[1].at)[0];
      if (first === undefined || first[1].at > until) break;
      this.due.delete(first[0]);
      this.nowMs = first[1].at;
      first[1].fn();
    }
    this.nowMs = until;
  }
}

let port = 1000;
function fakeSocket(): Socket & { destroyed: boolean } {
  const s = new EventEmitter() as unknown as Socket & { destroyed: boolean };
  const remotePort = port++;
  Object.assign(s, {
    destroyed: false,
    bytesRead: 0,
    localAddress: '127.0.0.1',
    localPort: 7000,
    remoteAddress: '127.0.0.1',
    remotePort,
    destroy() {
      s.destroyed = true;
      s.emit('close');
      return s;
    },
  });
  return s;
}

/** A gate on a port of 32 connections; `accept(bytesRead)` opens one that has read that much. */
function gateAtPortCap() {
  let open = 0;
  const g = new HandshakeGate({
    pendingMax: 4,
    timeoutMs: 5_000,
    graceMs: 1_000,
    timers: new ManualTimers(),
    port: { connectionsMax: 32, openConnections: () => open },
  });
  const accept = (bytesRead = 0) => {
    const s = fakeSocket();
    Object.assign(s, { bytesRead });
    open++;
    s.once('close', () => open--);
    g.accept(s);
    return s;
  };
  return { g, accept, openNow: () => open };
}

function gate(timers: ManualTimers): HandshakeGate {
  return new HandshakeGate({ pendingMax: 4, timeoutMs: 5_000, graceMs: 1_000, timers });
}

describe('HandshakeGate', () => {
  test('a burst beyond pendingMax is not reset before its grace; those that authenticate stay', () => {
    const timers = new ManualTimers();
    const g = gate(timers);
    const burst = Array.from({ length: 12 }, fakeSocket);
    for (const s of burst) g.accept(s);
    assert.equal(g.size, 12);
    assert.equal(
      burst.filter((s) => s.destroyed).length,
      0,
      'none closed at accept (it reset most of a burst)',
    );
    // Within the grace the clients' requests are read and they authenticate.
    timers.advance(10);
    for (const s of burst.slice(0, 9)) g.admit(s);
    timers.advance(2_000);
    assert.equal(burst.filter((s) => s.destroyed).length, 0);
    assert.equal(g.size, 3);
    assert.equal(g.evicted, 0);
  });

  test('past their grace the oldest of more than pendingMax are closed, down to pendingMax', () => {
    const timers = new ManualTimers();
    const g = gate(timers);
    const idle = Array.from({ length: 7 }, fakeSocket);
    for (const s of idle) {
      g.accept(s);
      timers.advance(100);
    }
    assert.equal(g.size, 7);
    timers.advance(1_000); // every one had its grace
    assert.deepEqual(
      idle.map((s) => s.destroyed),
      [true, true, true, false, false, false, false],
    );
    assert.equal(g.size, 4);
    assert.equal(g.evicted, 3);
    // A new one makes room at once now: the oldest had its grace.
    const late = fakeSocket();
    g.accept(late);
    assert.equal(idle[3]?.destroyed, true);
    assert.equal(late.destroyed, false);
    assert.equal(g.evicted, 4);
  });

  test('the deadline closes a connection that never authenticates', () => {
    const timers = new ManualTimers();
    const g = gate(timers);
    const s = fakeSocket();
    g.accept(s);
    timers.advance(4_999);
    assert.equal(s.destroyed, false);
    timers.advance(1);
    assert.equal(s.destroyed, true);
    assert.equal(g.expired, 1);
    assert.equal(g.size, 0);
  });

  test("near the port's connection cap the oldest pending connections are closed even within their grace, so new clients still get in", () => {
    // Found from outside: strangers' young connections filled the port (the grace protected
    // them) and the listener refused every real client.
    const { g, accept, openNow } = gateAtPortCap();
    const client = accept();
    g.admit(client); // authenticated: never closed by the gate
    const flood = Array.from({ length: 200 }, () => accept());
    assert.equal(client.destroyed, false);
    // A slot stays free for the next connection (headroom 2 of 32), the newest are kept.
    assert.ok(openNow() <= 30, `open ${openNow()}`);
    assert.equal(flood[flood.length - 1]!.destroyed, false);
    assert.equal(flood[0]!.destroyed, true);
    const newcomer = accept();
    assert.equal(newcomer.destroyed, false, 'a new client is accepted and has time to authenticate');
    g.admit(newcomer);
    for (let i = 0; i < 100; i++) accept();
    assert.equal(newcomer.destroyed, false);
    assert.ok(g.evicted >= 170);
  });
  test("near the port's cap a connection that has spoken outlives the silent ones, however many arrive after it", () => {
    // Found under load: 4,000 silent connections per second made a real client's connection the
    // oldest before its handshake finished, and it was closed ("peer ended the connection").
    const { g, accept, openNow } = gateAtPortCap();
    Array.from({ length: 40 }, () => accept());
    const handshaking = accept(64);
    const flood = Array.from({ length: 500 }, () => accept());
    assert.equal(handshaking.destroyed, false, 'the client in its handshake is kept');
    assert.ok(openNow() <= 30, `open ${openNow()}`);
    assert.equal(flood[0]!.destroyed, true);
    g.admit(handshaking);
    // All pending have spoken: the oldest is closed, as before.
    const speakers = Array.from({ length: 60 }, () => accept(1));
    assert.equal(speakers[0]!.destroyed, true);
    assert.equal(speakers[speakers.length - 1]!.destroyed, false);
    // The connection just accepted has had no time to speak: it is no silent one, the oldest goes.
    const newcomer = accept(0);
    assert.equal(newcomer.destroyed, false, 'a new connection is not closed for being silent at its accept');
    assert.equal(handshaking.destroyed, false, 'authenticated: never closed by the gate');
  });
});
