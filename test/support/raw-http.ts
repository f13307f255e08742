import http, { IncomingHttpHeaders } from 'node:http';

/** One HTTP answer exactly as it came off the wire: no decompression, no default request headers. */
export interface RawAnswer {
  status: number;
  headers: IncomingHttpHeaders;
  body: Buffer;
  /** Milliseconds from sending the request to the last body byte. */
  ms: number;
}

/**
 * GET over plain node:http. Unlike fetch (undici), it adds no `Accept-Language: *` or
 * `Accept-Encoding` of its own, so the request carries exactly `headers`, and `body` is the bytes sent.
 * No connection reuse: every call is its own socket.
 */
export function rawGet(url: string, headers: Record<string, string> = {}, signal?: AbortSignal): Promise<RawAnswer> {
  return rawRequest('GET', url, headers, signal);
}

/** As rawGet, with any method (HEAD: the headers exactly as sent, where fetch may add or drop some). */
export function rawRequest(method: string, url: string, headers: Record<string, string> = {}, signal?: AbortSignal): Promise<RawAnswer> {
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const req = http.request(url, { method, headers, agent: false, signal }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('error', reject);
      res.on('end', () =>
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks), ms: performance.now() - started }),
      );
    });
    req.on('error', reject);
    req.end();
  });
}
