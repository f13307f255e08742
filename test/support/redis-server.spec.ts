import { existsSync, readFileSync } from 'node:fs';
import net from 'node:net';
import { join } from 'node:path';
import tls from 'node:tls';
import { createClient } from 'redis';
import { freePort, startRedis, type RedisProcess } from './redis-server';

/** Raw round trip: writes `payload`, resolves with the first reply line. */
function exchange(socket: net.Socket, payload: string, timeoutMs = 2_000): Promise<string> {
  return new Promise((resolve, reject) => {
    let data = '';
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error('no reply'));
    }, timeoutMs);
    socket.on('data', (chunk: Buffer) => {
      data += chunk.toString('utf8');
      if (data.includes('\r\n')) {
        clearTimeout(timer);
        socket.destroy();
        resolve(data.split('\r\n')[0]);
      }
    });
    socket.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    socket.write(payload);
  });
}

function tcpPing(port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: '127.0.0.1', port }, () => {
      exchange(socket, 'PING\r\n').then(resolve, reject);
    });
    socket.once('error', reject);
  });
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

describe(freePort.name, () => {
  it('returns a port that can be bound on 127.0.0.1', async () => {
    const port = await freePort();
    expect(port).toBeGreaterThan(0);
    const server = net.createServer();
    await expect(
      new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(port, '127.0.0.1', () => resolve());
      }),
    ).resolves.toBeUndefined();
    await new Promise((r) => server.close(r));
  });
});

describe(startRedis.name, () => {
  describe('plain', () => {
    let redis: RedisProcess;

    beforeAll(async () => {
      redis = await startRedis();
    });

    afterAll(async () => {
      await redis.stop();
    });

    it('runs a private server on a free loopback port', async () => {
      expect(redis.host).toBe('127.0.0.1');
      expect(redis.port).not.toBe(6379);
      expect(redis.url).toBe(`redis://127.0.0.1:${redis.port}`);
      expect(isAlive(redis.pid)).toBe(true);
      await expect(tcpPing(redis.port)).resolves.toBe('+PONG');
      await expect(redis.ping()).resolves.toBe('+PONG');
    });

    it('pause() makes PING hang until resume()', async () => {
      await redis.pause();
      await expect(redis.ping(300)).rejects.toThrow('PING timed out after 300 ms');
      const late = redis.ping(5_000);
      await redis.resume();
      await expect(late).resolves.toBe('+PONG');
    });

    it('kill() ends the process; restart() brings it back on the same port', async () => {
      const { port, pid } = redis;
      await redis.kill();
      expect(isAlive(pid)).toBe(false);
      await expect(tcpPing(port)).rejects.toThrow(/ECONNREFUSED/);

      await redis.restart();
      expect(redis.port).toBe(port);
      expect(redis.pid).not.toBe(pid);
      await expect(tcpPing(port)).resolves.toBe('+PONG');
    });

    it('restart() also works on a running server', async () => {
      const { pid } = redis;
      await redis.restart();
      expect(isAlive(pid)).toBe(false);
      await expect(redis.ping()).resolves.toBe('+PONG');
    });
  });

  it('stop() resumes a paused server and waits for it to exit', async () => {
    const redis = await startRedis();
    const { pid } = redis;
    await redis.pause();
    await redis.stop();
    expect(isAlive(pid)).toBe(false);
    await expect(redis.stop()).resolves.toBeUndefined();

    await redis.restart();
    await expect(redis.ping()).resolves.toBe('+PONG');
    await redis.stop();
  });

  it('gives each test its own server', async () => {
    const [a, b] = await Promise.all([startRedis(), startRedis()]);
    try {
      expect(a.port).not.toBe(b.port);
      await expect(Promise.all([a.ping(), b.ping()])).resolves.toEqual(['+PONG', '+PONG']);
    } finally {
      await Promise.all([a.stop(), b.stop()]);
    }
  });

  it('password: requirepass is set and carried in the URL', async () => {
    const redis = await startRedis({ password: 's3cret pass/word' });
    try {
      expect(redis.url).toBe(`redis://:s3cret%20pass%2Fword@127.0.0.1:${redis.port}`);
      await expect(tcpPing(redis.port)).resolves.toMatch(/^-NOAUTH/);
      await expect(redis.ping()).resolves.toBe('+PONG');
    } finally {
      await redis.stop();
    }
  });

  it('users: an ACL user is held to its rule; commandCalls() counts what ran, by command', async () => {
    const redis = await startRedis({ users: ['limited on >pw ~* +@all -keys'] });
    const client = createClient({ url: `redis://limited:pw@127.0.0.1:${redis.port}` });
    client.on('error', () => undefined);
    try {
      await client.connect();
      const before = await redis.commandCalls();
      await client.set('k', 'v');
      await client.get('k');
      await client.get('k');
      await expect(client.keys('*')).rejects.toThrow(/NOPERM/);
      const after = await redis.commandCalls();
      expect((after.get ?? 0) - (before.get ?? 0)).toBe(2);
      expect((after.set ?? 0) - (before.set ?? 0)).toBe(1);
      // A refused command did not run: no calls (Redis 7 lists it, with rejected_calls=1).
      expect(after.keys ?? 0).toBe(0);
    } finally {
      await client.quit().catch(() => undefined);
      await redis.stop();
    }
  });

  describe('tls', () => {
    let redis: RedisProcess;

    beforeAll(async () => {
      redis = await startRedis({ tls: true, password: 'tls-secret' });
    }, 30_000);

    afterAll(async () => {
      await redis.stop();
    });

    it('serves TLS only, with a rediss:// URL and its certificates in certDir', async () => {
      expect(redis.url).toBe(`rediss://:tls-secret@127.0.0.1:${redis.port}`);
      expect(redis.certDir).toBeDefined();
      for (const file of ['ca.crt', 'server.crt', 'server.key']) {
        expect(existsSync(join(redis.certDir!, file))).toBe(true);
      }
      await expect(tcpPing(redis.port)).rejects.toThrow();
    });

    it('answers over node:tls with rejectUnauthorized:false', async () => {
      const socket = tls.connect({ host: '127.0.0.1', port: redis.port, rejectUnauthorized: false });
      await new Promise((resolve, reject) => {
        socket.once('secureConnect', resolve);
        socket.once('error', reject);
      });
      await expect(exchange(socket, 'AUTH tls-secret\r\nPING\r\n')).resolves.toBe('+OK');
      await expect(redis.ping()).resolves.toBe('+PONG');
    });

    it('regenerates its certificates when restarted after stop()', async () => {
      await redis.stop();
      expect(existsSync(redis.certDir!)).toBe(false);
      await redis.restart();
      await expect(redis.ping()).resolves.toBe('+PONG');
    }, 30_000);

    it('has a certificate that verifies against the generated CA', async () => {
      const socket = tls.connect({ host: '127.0.0.1', port: redis.port, ca: readFileSync(join(redis.certDir!, 'ca.crt')) });
      await expect(
        new Promise<boolean>((resolve, reject) => {
          socket.once('secureConnect', () => resolve(socket.authorized));
          socket.once('error', reject);
        }),
      ).resolves.toBe(true);
      socket.destroy();
    });
  });
});
