import { createServer, request, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { errorBody, writeError } from './error-writer';

describe('writeError', () => {
  let server: Server;
  let port: number;
  let retryAfter: number | undefined;

  beforeAll(async () => {
    server = createServer((_req, res) => writeError(res, errorBody(503, 'Nominatim is cooling down', 'upstream_cooldown'), retryAfter));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    port = (server.address() as AddressInfo).port;
  });

  afterAll(async () => {
    await new Promise((resolve) => server.close(resolve));
  });

  function get(method = 'GET'): Promise<{ status: number; headers: Record<string, unknown>; body: string }> {
    return new Promise((resolve, reject) => {
      const req = request({ port, host: '127.0.0.1', method }, (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (body += c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
      });
      req.on('error', reject);
      req.end();
    });
  }

  it('writes the one JSON error shape, never cached, with Retry-After when given', async () => {
    retryAfter = 7;
    const r = await get();
    expect(r.status).toBe(503);
    expect(JSON.parse(r.body)).toEqual({ statusCode: 503, error: 'Service Unavailable', message: 'Nominatim is cooling down', code: 'upstream_cooldown' });
    expect(r.headers['content-type']).toBe('application/json; charset=utf-8');
    expect(r.headers['cache-control']).toBe('no-store');
    expect(r.headers['retry-after']).toBe('7');
    expect(Number(r.headers['content-length'])).toBe(Buffer.byteLength(r.body));
  });

  it('leaves Retry-After out when there is none, and the body out of a HEAD answer', async () => {
    retryAfter = undefined;
    const r = await get('HEAD');
    expect(r.status).toBe(503);
    expect(r.headers['retry-after']).toBeUndefined();
    expect(r.body).toBe('');
  });

  it('gives the reason phrase of the status, and no code unless one is given', () => {
    expect(errorBody(429, 'Rate limit exceeded; try again later')).toEqual({ statusCode: 429, error: 'Too Many Requests', message: 'Rate limit exceeded; try again later' });
  });
});
