import http from 'node:http';
import type { AddressInfo } from 'node:net';

/** A reverse proxy on loopback serving `target` under `prefix` only (anything else: 404). */
export async function startPrefixProxy(prefix: string, target: string): Promise<{ origin: string; close: () => Promise<void> }> {
  const to = new URL(target);
  const server = http.createServer((req, res) => {
    const url = req.url ?? '/';
    if (!url.startsWith(`${prefix}/`)) {
      res.writeHead(404, { 'content-type': 'text/plain' }).end(`not under ${prefix}: ${url}`);
      return;
    }
    const headers = { ...req.headers, host: to.host };
    const out = http.request({ host: to.hostname, port: to.port, method: req.method, path: url.slice(prefix.length), headers }, (answer) => {
      res.writeHead(answer.statusCode ?? 502, answer.headers);
      answer.pipe(res);
    });
    out.on('error', () => res.writeHead(502).end());
    req.pipe(out);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    origin: `http://127.0.0.1:${port}`,
    close: () => new Promise<void>((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    }),
  };
}
