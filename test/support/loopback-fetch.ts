/**
 * A `fetch` that sends every request to one port of 127.0.0.1 whatever the URL's host name, with
 * the URL's host in the Host header: virtual-hosted S3 names (`bucket.s3.test`) reach the fake S3
 * without DNS. Enough of fetch for the S3 client: method, headers, a byte or stream body, signal,
 * streaming answer body.
 */
import { request } from 'node:http';
import { Readable } from 'node:stream';

export function loopbackFetch(port: number): typeof fetch {
  return (input, init) =>
    new Promise<Response>((resolve, reject) => {
      const url = new URL(input instanceof Request ? input.url : String(input));
      const headers: Record<string, string> = { host: url.host };
      new Headers(init?.headers).forEach((v, k) => {
        headers[k] = v;
      });
      const body = init?.body as Uint8Array | ReadableStream<Uint8Array> | undefined;
      if (body instanceof Uint8Array) headers['content-length'] = String(body.byteLength);
      const method = init?.method ?? 'GET';
      const req = request(
        {
          host: '127.0.0.1',
          port,
          method,
          path: `${url.pathname}${url.search}`,
          headers,
          signal: init?.signal ?? undefined,
        },
        (res) => {
          const h = new Headers();
          for (const [k, v] of Object.entries(res.headers)) {
            if (typeof v === 'string') h.set(k, v);
          }
          const status = res.statusCode ?? 500;
          const nullBody = method === 'HEAD' || status === 204 || status === 304;
          if (nullBody) res.resume();
          const stream = nullBody ? null : (Readable.toWeb(res) as unknown as ReadableStream<Uint8Array>);
          resolve(new Response(stream, { status, headers: h }));
        },
      );
      req.on('error', (e) => reject(new TypeError('fetch failed', { cause: e })));
      if (body instanceof Uint8Array) req.end(Buffer.from(body.buffer, body.byteOffset, body.byteLength));
      else if (body === undefined) req.end();
      else Readable.fromWeb(body as import('node:stream/web').ReadableStream<Uint8Array>).pipe(req);
    });
}
