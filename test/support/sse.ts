/**
 * Server-Sent Events as a test reads them: the fields of one event block, and a stream read with
 * fetch whose every wait is bounded.
 */
import assert from 'node:assert/strict';

export interface SseEvent {
  readonly event: string;
  readonly id: string | undefined;
  readonly data: string;
}

/** The fields of one event block (the text between two blank lines); comments are skipped. */
export function sseFields(block: string): Map<string, string> {
  const fields = new Map<string, string>();
  for (const line of block.split('\n')) {
    if (line.startsWith(':') || line.length === 0) continue;
    const colon = line.indexOf(':');
    fields.set(line.slice(0, colon), line.slice(colon + 1).trimStart());
  }
  return fields;
}

/**
 * A Server-Sent Events stream read with fetch: `next()` is the next event with data (comments
 * skipped), `ended()` is true once the server ended the stream, `close()` aborts it. A read that
 * waits longer than `readTimeoutMs` aborts the stream.
 */
export async function openSse(url: string, headers: Record<string, string>, readTimeoutMs = 10_000) {
  const ac = new AbortController();
  const res = await fetch(url, { headers, signal: ac.signal });
  assert.equal(res.status, 200, await (res.status === 200 ? Promise.resolve('') : res.text()));
  assert.match(res.headers.get('content-type') ?? '', /^text\/event-stream/);
  const reader = (res.body as ReadableStream<Uint8Array>).getReader();
  const decoder = new TextDecoder();
  let buffered = '';
  let done = false;
  const read = async (): Promise<boolean> => {
    const timer = setTimeout(() => ac.abort(), readTimeoutMs);
    try {
      const r = await reader.read();
      if (r.done) return false;
      buffered += decoder.decode(r.value, { stream: true });
      return true;
    } finally {
      clearTimeout(timer);
    }
  };
  const next = async (): Promise<SseEvent> => {
    for (let i = 0; i < 1000; i++) {
      const end = buffered.indexOf('\n\n');
      if (end >= 0) {
        const fields = sseFields(buffered.slice(0, end));
        buffered = buffered.slice(end + 2);
        if (!fields.has('data')) continue;
        return {
          event: fields.get('event') ?? 'message',
          id: fields.get('id'),
          data: fields.get('data') ?? '',
        };
      }
      if (done || !(await read())) {
        done = true;
        throw new Error('the event stream ended');
      }
    }
    throw new Error('too many reads for one event');
  };
  return {
    next,
    ended: async (): Promise<boolean> => {
      for (let i = 0; i < 100 && !done; i++) if (!(await read())) done = true;
      return done;
    },
    close: () => ac.abort(),
  };
}
