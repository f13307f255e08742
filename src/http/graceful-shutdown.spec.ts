import { readFileSync } from 'node:fs';
import http, { Agent } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { loadConfig } from '../config/configuration';
import { drainHttpServer, SHUTDOWN_HOOKS_GRACE_MS } from './graceful-shutdown';

/** A GET on a keep-alive agent: resolves with status, the Connection header and the body. */
function get(port: number, path: string, agent: Agent): Promise<{ status: number; connection: string | undefined; body: string }> {
  return new Promise((resolve, reject) => {
    http
      .get({ host: '127.0.0.1', port, path, agent }, (res) => {
        let body = '';
        res.on('data', (d: Buffer) => (body += d.toString()));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, connection: res.headers.connection, body }));
      })
      .on('error', reject);
  });
}

describe(drainHttpServer.name, () => {
  let server: http.Server;
  let port: number;
  let agent: Agent;
  const timers: NodeJS.Timeout[] = [];

  beforeEach(async () => {
    server = http.createServer((req, res) => {
      const ms = Number(new URL(req.url ?? '/', 'http://x').searchParams.get('ms') ?? 0);
      const timer = setTimeout(() => res.end(`done ${req.url}`), ms);
      timers.push(timer);
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    port = (server.address() as AddressInfo).port;
    agent = new Agent({ keepAlive: true, maxSockets: 4 });
  });

  afterEach(() => {
    for (const t of timers.splice(0)) clearTimeout(t);
    agent.destroy();
    server.closeAllConnections();
    server.close();
  });

  it('lets running requests finish, closes idle keep-alive connections and refuses new ones', async () => {
    await get(port, '/warm', agent); // leaves an idle keep-alive connection
    const slow = get(port, '/slow?ms=300', agent);
    await new Promise((r) => setTimeout(r, 50));
    const drained = drainHttpServer(server, 5000);
    await expect(get(port, '/new', new Agent())).rejects.toMatchObject({ code: 'ECONNREFUSED' });
    await expect(slow).resolves.toMatchObject({ status: 200, body: 'done /slow?ms=300' });
    const result = await drained;
    expect(result.drained).toBe(true);
    // Closed right after the last answer, not after the keep-alive timeout (nearer the first than the second).
    expect(result.ms).toBeLessThan(server.keepAliveTimeout / 2);
    expect(server.listening).toBe(false);
  });

  it('cuts off requests still running at the bound', async () => {
    const STUCK_MS = 10_000;
    const stuck = get(port, `/stuck?ms=${STUCK_MS}`, agent);
    await new Promise((r) => setTimeout(r, 50));
    const started = Date.now();
    const result = await drainHttpServer(server, 200);
    expect(result.drained).toBe(false);
    // At the 200 ms bound, not when the request would have ended.
    expect(Date.now() - started).toBeLessThan(STUCK_MS / 2);
    await expect(stuck).rejects.toMatchObject({ code: 'ECONNRESET' });
  });
});

/** Docker sends SIGKILL when its grace period ends: each one the project sets or tells of must outlast the shutdown. */
describe('stop grace periods', () => {
  const read = (file: string) => readFileSync(join(__dirname, '../..', file), 'utf8');

  it("outlast the longest shutdown: compose's stop_grace_period and the --stop-timeout on every docker run of the service in the docs", () => {
    expect(() => loadConfig({ SHUTDOWN_TIMEOUT_MS: '25001' })).toThrow('SHUTDOWN_TIMEOUT_MS must be a whole number from 0 to 25000');
    const longestMs = loadConfig({ SHUTDOWN_TIMEOUT_MS: '25000' }).app.shutdownTimeoutMs + SHUTDOWN_HOOKS_GRACE_MS;
    const graces = [...read('docker-compose.yml').matchAll(/^ +stop_grace_period: (\d+)s$/gm)].map((m) => Number(m[1]));
    expect(graces).toHaveLength(2); // web and web-cluster
    // A `docker run` of the service (its image last, no command after it), with its continuation lines.
    const runs = ['README.md', 'docs/deployment.md', 'docs/operations.md']
      .flatMap((file) => [...read(file).matchAll(/docker run (?:[^\n]*\\\n)*[^\n]*/g)].map((m) => m[0].trim()))
      .filter((run) => /[\s/]places-cache(:\S*)?$/.test(run));
    expect(runs.length).toBeGreaterThan(0);
    const timeouts = runs.map((run) => Number(/--stop-timeout (\d+)/.exec(run)?.[1]));
    for (const seconds of [...graces, ...timeouts]) expect(seconds * 1000).toBeGreaterThan(longestMs);
  });
});
