/**
 * A private `redis-server` per test: its own free port on 127.0.0.1, its own temp dir, no persistence.
 * Never the shared Redis on 6379. Children are SIGKILLed when the test process exits.
 */
import { ChildProcess, execFile, spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import tls from 'node:tls';
import { promisify } from 'node:util';
import { createClient } from 'redis';
import { track } from './leftovers';

const HOST = '127.0.0.1';
const READY_TIMEOUT_MS = 10_000;
const STOP_TIMEOUT_MS = 5_000;

export interface StartRedisOptions {
  /** Serve TLS only (a self-signed CA and server certificate are generated with openssl). */
  tls?: boolean;
  /** Set `requirepass`. */
  password?: string;
  /** ACL users besides `default`, one rule line each, e.g. `app on >secret ~* &* +@all -keys`. */
  users?: string[];
  /** More redis-server arguments, e.g. `['--cluster-enabled', 'yes']`. */
  args?: string[];
}

export interface RedisProcess {
  readonly host: '127.0.0.1';
  readonly port: number;
  /** `redis://[:password@]127.0.0.1:port`, or `rediss://…` in TLS mode. */
  readonly url: string;
  /** PID of the current child (changes after restart()). */
  readonly pid: number;
  readonly password: string | undefined;
  readonly tls: boolean;
  /** TLS mode: directory with ca.crt, server.crt and server.key. */
  readonly certDir: string | undefined;
  /** SIGTERM (resuming it first if paused), wait for the exit (SIGKILL after 5 s), remove the temp dir. */
  stop(): Promise<void>;
  /** SIGKILL and wait for the exit. */
  kill(): Promise<void>;
  /** SIGSTOP: the port stays open, commands hang. */
  pause(): Promise<void>;
  /** SIGCONT. */
  resume(): Promise<void>;
  /** Start again on the same port (stopping first if still running) and wait until it answers. */
  restart(): Promise<void>;
  /** One round trip (AUTH first when a password is set); rejects after timeoutMs. Resolves with the reply line. */
  ping(timeoutMs?: number): Promise<string>;
  /** What the server printed (useful in failure messages). */
  output(): string;
  /**
   * How many times each command ran since the server started (INFO commandstats), by lower-case name
   * (`get`, `set`, `evalsha`, …), asked as the default user. The question itself adds an `info`.
   */
  commandCalls(): Promise<Record<string, number>>;
}

/** A free TCP port on 127.0.0.1 (listen on 0, read it, close). */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.unref();
    server.once('error', reject);
    server.listen(0, HOST, () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

/* Cleanup when the test process exits, however it exits normally. */
const live = new Set<ChildProcess>();
const paused = new Set<ChildProcess>();
const tempDirs = new Set<string>();
let exitHookInstalled = false;

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on('exit', () => {
    for (const child of live) {
      try {
        if (paused.has(child)) child.kill('SIGCONT');
        child.kill('SIGKILL');
      } catch {
        // already gone
      }
    }
    for (const dir of tempDirs) rmSync(dir, { recursive: true, force: true });
  });
}

const run = promisify(execFile);

async function makeCertificates(dir: string): Promise<void> {
  const openssl = async (...args: string[]): Promise<void> => {
    try {
      await run('openssl', args, { cwd: dir });
    } catch (err) {
      const e = err as NodeJS.ErrnoException & { stderr?: string };
      if (e.code === 'ENOENT') {
        throw new Error('openssl not found on PATH: it is needed to start redis-server in TLS mode', { cause: err });
      }
      throw new Error(`openssl ${args.join(' ')} failed: ${e.stderr ?? e.message}`, { cause: err });
    }
  };
  writeFileSync(join(dir, 'server.ext'), 'subjectAltName=IP:127.0.0.1,DNS:localhost\n');
  await openssl('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-sha256', '-days', '2',
    '-subj', '/CN=places-cache test CA', '-keyout', 'ca.key', '-out', 'ca.crt');
  await openssl('req', '-newkey', 'rsa:2048', '-nodes', '-sha256',
    '-subj', '/CN=127.0.0.1', '-keyout', 'server.key', '-out', 'server.csr');
  await openssl('x509', '-req', '-in', 'server.csr', '-CA', 'ca.crt', '-CAkey', 'ca.key', '-CAcreateserial',
    '-days', '2', '-sha256', '-extfile', 'server.ext', '-out', 'server.crt');
}

/** RESP encoding, so a password with spaces or quotes still works. */
const command = (...args: string[]): string =>
  `*${args.length}\r\n${args.map((a) => `$${Buffer.byteLength(a)}\r\n${a}\r\n`).join('')}`;

/** Sends PING (after AUTH) over TCP or TLS and resolves with the PING reply line. */
function pingOnce(port: number, opts: { tls: boolean; password?: string; timeoutMs: number }): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket: net.Socket = opts.tls
      ? tls.connect({ host: HOST, port, rejectUnauthorized: false })
      : net.connect({ host: HOST, port });
    const expected = opts.password === undefined ? 1 : 2;
    let buffer = '';
    const done = (err: Error | null, reply?: string): void => {
      clearTimeout(timer);
      socket.destroy();
      if (err) reject(err);
      else resolve(reply ?? '');
    };
    const timer = setTimeout(() => done(new Error(`PING timed out after ${opts.timeoutMs} ms`)), opts.timeoutMs);
    socket.once(opts.tls ? 'secureConnect' : 'connect', () => {
      socket.write((opts.password === undefined ? '' : command('AUTH', opts.password)) + command('PING'));
    });
    socket.on('data', (chunk: Buffer) => {
      buffer += chunk.toString('utf8');
      const lines = buffer.split('\r\n').filter(Boolean);
      if (lines.length >= expected && buffer.endsWith('\r\n')) done(null, lines[expected - 1]);
    });
    socket.on('error', (err) => done(err));
  });
}

class RedisServer implements RedisProcess {
  readonly host = HOST;
  private child: ChildProcess | undefined;
  private exited: Promise<void> = Promise.resolve();
  private log = '';
  /** Drops this server from the leftovers (test/support/leftovers.ts) once stopped. */
  forget: () => void = () => undefined;

  constructor(
    readonly port: number,
    readonly password: string | undefined,
    readonly tls: boolean,
    private readonly dir: string,
    private readonly users: string[] = [],
    private readonly extraArgs: string[] = [],
  ) {}

  get certDir(): string | undefined {
    return this.tls ? join(this.dir, 'tls') : undefined;
  }

  get url(): string {
    const auth = this.password === undefined ? '' : `:${encodeURIComponent(this.password)}@`;
    return `${this.tls ? 'rediss' : 'redis'}://${auth}${HOST}:${this.port}`;
  }

  get pid(): number {
    return this.child?.pid ?? -1;
  }

  output(): string {
    return this.log;
  }

  /** Spawns the child and waits until it answers PING. */
  async launch(): Promise<void> {
    // stop() removes the dir; a later restart() needs it (and the certificates) back.
    mkdirSync(this.dir, { recursive: true });
    tempDirs.add(this.dir);
    if (this.certDir && !existsSync(join(this.certDir, 'server.crt'))) {
      mkdirSync(this.certDir, { recursive: true });
      await makeCertificates(this.certDir);
    }
    const args = ['--save', '', '--appendonly', 'no', '--daemonize', 'no', '--bind', HOST, '--dir', this.dir, '--loglevel', 'warning'];
    if (this.tls && this.certDir) {
      args.push('--port', '0', '--tls-port', String(this.port),
        '--tls-cert-file', join(this.certDir, 'server.crt'),
        '--tls-key-file', join(this.certDir, 'server.key'),
        '--tls-ca-cert-file', join(this.certDir, 'ca.crt'),
        '--tls-auth-clients', 'no');
    } else {
      args.push('--port', String(this.port));
    }
    if (this.password !== undefined) args.push('--requirepass', this.password);
    for (const rule of this.users) args.push('--user', ...rule.split(' ').filter(Boolean));
    args.push(...this.extraArgs);

    this.log = '';
    const child = spawn('redis-server', args, { stdio: ['ignore', 'pipe', 'pipe'] });
    this.child = child;
    live.add(child);
    let exitInfo: string | undefined;
    let spawnError: Error | undefined;
    this.exited = new Promise<void>((resolve) => {
      child.once('exit', (code, signal) => {
        exitInfo = `exited with ${signal ?? `code ${code}`}`;
        live.delete(child);
        paused.delete(child);
        resolve();
      });
      child.once('error', (err: NodeJS.ErrnoException) => {
        spawnError = err.code === 'ENOENT'
          ? new Error('redis-server not found on PATH: install Redis (e.g. `apt-get install redis-server`) to run these tests')
          : err;
        live.delete(child);
        resolve();
      });
    });
    const collect = (chunk: Buffer): void => {
      this.log = (this.log + chunk.toString('utf8')).slice(-8_000);
    };
    child.stdout?.on('data', collect);
    child.stderr?.on('data', collect);
    // A forgotten server must not keep the test process alive; the exit hook kills it.
    child.unref();
    (child.stdout as net.Socket | null)?.unref?.();
    (child.stderr as net.Socket | null)?.unref?.();

    const deadline = Date.now() + READY_TIMEOUT_MS;
    for (;;) {
      if (spawnError) throw spawnError;
      if (exitInfo) throw new Error(`redis-server on port ${this.port} ${exitInfo} before answering PING:\n${this.log}`);
      try {
        await pingOnce(this.port, { tls: this.tls, password: this.password, timeoutMs: 500 });
        return;
      } catch {
        if (Date.now() > deadline) {
          await this.kill();
          throw new Error(`redis-server on port ${this.port} did not answer PING within ${READY_TIMEOUT_MS} ms:\n${this.log}`);
        }
        await new Promise((r) => setTimeout(r, 25));
      }
    }
  }

  async stop(): Promise<void> {
    this.forget();
    const child = this.child;
    if (child && live.has(child)) {
      if (paused.has(child)) await this.resume();
      child.ref(); // keep the event loop alive until the exit is seen
      const timer = setTimeout(() => child.kill('SIGKILL'), STOP_TIMEOUT_MS);
      child.kill('SIGTERM');
      await this.exited;
      clearTimeout(timer);
    }
    // Jest workers end without 'exit' handlers running, so clean up here.
    rmSync(this.dir, { recursive: true, force: true });
    tempDirs.delete(this.dir);
  }

  async kill(): Promise<void> {
    const child = this.child;
    if (!child || !live.has(child)) return;
    child.ref();
    child.kill('SIGKILL');
    await this.exited;
  }

  async pause(): Promise<void> {
    const child = this.child;
    if (!child || !live.has(child)) throw new Error('redis-server is not running');
    child.kill('SIGSTOP');
    paused.add(child);
  }

  async resume(): Promise<void> {
    const child = this.child;
    if (!child || !paused.has(child)) return;
    child.kill('SIGCONT');
    paused.delete(child);
  }

  async restart(): Promise<void> {
    const child = this.child;
    if (child && live.has(child)) {
      if (paused.has(child)) await this.resume();
      child.ref();
      child.kill('SIGTERM');
      await this.exited;
    }
    await this.launch();
  }

  ping(timeoutMs = 1_000): Promise<string> {
    return pingOnce(this.port, { tls: this.tls, password: this.password, timeoutMs });
  }

  async commandCalls(): Promise<Record<string, number>> {
    const client = createClient({ url: this.url, socket: this.tls ? { tls: true, rejectUnauthorized: false } : {} });
    client.on('error', () => undefined);
    await client.connect();
    try {
      const info = await client.info('commandstats');
      const calls: Record<string, number> = {};
      for (const m of info.matchAll(/^cmdstat_([^:]+):calls=(\d+)/gm)) calls[m[1]] = Number(m[2]);
      return calls;
    } finally {
      await client.quit();
    }
  }
}

/** Starts a private redis-server on a free port and resolves once it answers PING. */
export async function startRedis(opts: StartRedisOptions = {}): Promise<RedisProcess> {
  installExitHook();
  const dir = mkdtempSync(join(tmpdir(), 'places-cache-redis-'));
  // The port is free when picked but could be taken before redis binds it: retry with another.
  let lastError: unknown;
  for (let attempt = 0; attempt < 3; attempt++) {
    const server = new RedisServer(await freePort(), opts.password, Boolean(opts.tls), dir, opts.users, opts.args);
    try {
      await server.launch();
      server.forget = track('redis', `redis-server on port ${server.port}`, () => server.stop());
      return server;
    } catch (err) {
      lastError = err;
      if (!/Address already in use/i.test(server.output())) {
        rmSync(dir, { recursive: true, force: true });
        tempDirs.delete(dir);
        throw err;
      }
    }
  }
  rmSync(dir, { recursive: true, force: true });
  tempDirs.delete(dir);
  throw lastError;
}
