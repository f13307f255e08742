import http from 'node:http';
import net from 'node:net';
import { applyServerTimeouts, checkingIntervalMs, ClientErrorReason, clientErrorReason } from './server-timeouts';

describe('server timeouts', () => {
  it('names client errors by what an operator acts on', () => {
    expect(['ERR_HTTP_REQUEST_TIMEOUT', 'HPE_HEADER_OVERFLOW', 'ECONNRESET', 'HPE_INVALID_METHOD', undefined].map(clientErrorReason)).toEqual([
      'timeout',
      'headers_too_large',
      'reset',
      'bad_request',
      'bad_request',
    ]);
  });

  it('checks for late clients a tenth of the headers timeout apart, from 100 ms to 1 s', () => {
    expect([50, 1000, 5000, 10_000, 120_000].map(checkingIntervalMs)).toEqual([100, 100, 500, 1000, 1000]);
  });

  it('sets the timeouts and answers client errors as Node does, counting each', async () => {
    const counted: ClientErrorReason[] = [];
    const server = http.createServer((_req, res) => res.end('ok'));
    applyServerTimeouts(server, { headersTimeoutMs: 500, requestTimeoutMs: 800, keepAliveTimeoutMs: 1500 }, (r) => counted.push(r));
    expect([server.headersTimeout, server.requestTimeout, server.keepAliveTimeout]).toEqual([500, 800, 1500]);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as net.AddressInfo;
    const send = (bytes: string) =>
      new Promise<string>((resolve) => {
        const socket = net.connect(port, '127.0.0.1', () => socket.write(bytes));
        let reply = '';
        socket.on('data', (d: Buffer) => (reply += d.toString()));
        socket.on('error', () => undefined);
        socket.on('close', () => resolve(reply));
      });
    try {
      expect(await send('BREW / HTCPCP/1.0\r\n\r\n')).toBe('HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n');
      expect(await send(`GET / HTTP/1.1\r\nX: ${'a'.repeat(20_000)}\r\n\r\n`)).toBe(
        'HTTP/1.1 431 Request Header Fields Too Large\r\nConnection: close\r\n\r\n',
      );
      expect(await send('GET / HTTP/1.1\r\n')).toBe('HTTP/1.1 408 Request Timeout\r\nConnection: close\r\n\r\n');
      expect(counted).toEqual(['bad_request', 'headers_too_large', 'timeout']);
    } finally {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    }
  });
});
