/**
 * Raft transport throughput (not a test): two transports in one process on 127.0.0.1, node 1
 * sends small appends (one 100-byte command entry each) to node 2 as fast as the window allows.
 * Sender and receiver share one event loop and one core, so this is a floor, not a ceiling.
 *
 *   node --import tsx bench/transport.ts [--seconds 3] [--entry-bytes 100] [--window 20000] [--tls]
 */
import { parseArgs } from 'node:util';
import type { Message, NodeId } from '../src/raft/types.js';
import { RaftTransport } from '../src/transport/raft-transport.js';
import { appendOf } from '../test/support/append-message.js';

const { values } = parseArgs({
  options: {
    seconds: { type: 'string', default: '3' },
    'entry-bytes': { type: 'string', default: '100' },
    window: { type: 'string', default: '20000' },
    tls: { type: 'boolean', default: false },
  },
});
const durationMs = Number(values.seconds) * 1000;
const entryBytes = Number(values['entry-bytes']);
const windowMessages = Number(values.window);
const SECRET = 'bench-secret-0123456789abcdef';
const host = '127.0.0.1';

let received = 0;
let receivedBytes = 0;
const make = (id: number, onMessage: (m: Message) => void) =>
  new RaftTransport({
    nodeId: id as NodeId,
    listen: { host, port: 0 },
    peers: new Map(),
    secret: SECRET,
    ...(values.tls ? { tls: 'self-signed' as const } : {}),
    limits: { bulkQueueMessagesMax: windowMessages * 2 },
    onMessage: (_g, m) => onMessage(m),
  });

const a = make(1, () => {});
const b = make(2, (m) => {
  received++;
  if (m.type === 'append')
    for (const e of m.entries) if (e.kind === 'command') receivedBytes += e.data.byteLength;
});
const addrA = await a.start();
const addrB = await b.start();
a.setPeer(2 as NodeId, addrB);
b.setPeer(1 as NodeId, addrA);
// Bounded wait for the lanes.
for (let i = 0; i < 1000 && !a.status().every((s) => s.bulk === 'ready' && s.control === 'ready'); i++) {
  await new Promise((r) => setTimeout(r, 5));
}

const data = new Uint8Array(entryBytes).fill(1);
const append = (index: number): Message => appendOf(1 as NodeId, 2 as NodeId, index, data);

let sent = 0;
let dropped = 0;
const start = performance.now();
const deadline = start + durationMs;
// Each turn tops the window up, then yields so the sockets can move the bytes.
while (performance.now() < deadline) {
  const room = windowMessages - (sent - received);
  for (let i = 0; i < Math.min(room, 2000); i++) {
    if (a.send('sql', append(sent + 1))) sent++;
    else dropped++;
  }
  await new Promise((r) => setImmediate(r));
}
const elapsedS = (performance.now() - start) / 1000;
console.log(
  `transport${values.tls ? ' (TLS)' : ''}: ${Math.round(received / elapsedS).toLocaleString('en-US')} appends/s ` +
    `of ${entryBytes} B (${(receivedBytes / elapsedS / 1024 / 1024).toFixed(1)} MiB/s payload), ` +
    `${received.toLocaleString('en-US')} delivered in ${elapsedS.toFixed(1)} s, ${dropped} dropped`,
);
await a.close();
await b.close();
