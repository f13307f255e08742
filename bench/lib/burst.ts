/**
 * Many identical requests at the same moment, as wrk would send them: connections opened (and used
 * once) beforehand, each request written as pre-built bytes, each answer recognised by its head and
 * Content-Length without a full HTTP client. Node's http client spends tens of µs per answer; with
 * 200 answers arriving together that would be counted as server latency.
 */
import net from 'node:net';
import { performance } from 'node:perf_hooks';

export interface BurstAnswer {
  status: number;
  /** X-Cache and Cache-Status of the answer */
  xCache: string;
  cacheStatus: string;
  /** from writing the request to the answer's last byte */
  ms: number;
}

class Connection {
  private buf: Buffer = Buffer.alloc(0);
  private waiting: ((a: BurstAnswer) => void) | null = null;
  private sentAt = 0;

  constructor(private readonly socket: net.Socket) {
    socket.setNoDelay(true);
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
  }

  static open(port: number): Promise<Connection> {
    return new Promise((resolve, reject) => {
      const socket = net.connect({ host: '127.0.0.1', port }, () => resolve(new Connection(socket)));
      socket.once('error', reject);
    });
  }

  send(request: Buffer): Promise<BurstAnswer> {
    return new Promise((resolve) => {
      this.waiting = resolve;
      this.sentAt = performance.now();
      this.socket.write(request);
    });
  }

  close(): void {
    this.socket.destroy();
  }

  private onData(chunk: Buffer): void {
    this.buf = this.buf.length === 0 ? chunk : Buffer.concat([this.buf, chunk]);
    const end = this.buf.indexOf('\r\n\r\n');
    if (end === -1) return;
    const head = this.buf.subarray(0, end).toString('latin1');
    if (/\r\ntransfer-encoding:/i.test(head)) throw new Error('burst: chunked answers are not supported');
    const length = Number(/\r\ncontent-length: *(\d+)/i.exec(head)?.[1] ?? 0);
    if (this.buf.length < end + 4 + length) return;
    this.buf = this.buf.subarray(end + 4 + length);
    const done = this.waiting;
    this.waiting = null;
    done?.({
      status: Number(head.slice(9, 12)),
      xCache: /\r\nx-cache: *([^\r]*)/i.exec(head)?.[1] ?? '',
      cacheStatus: /\r\ncache-status: *([^\r]*)/i.exec(head)?.[1] ?? '',
      ms: performance.now() - this.sentAt,
    });
  }
}

/** Opens `n` connections to `port` and sends one request on each (warm-up: the answer is read and dropped). */
export async function openConnections(port: number, n: number, warmPath: string): Promise<Connection[]> {
  const conns = await Promise.all(Array.from({ length: n }, () => Connection.open(port)));
  const warm = request(warmPath);
  await Promise.all(conns.map((c) => c.send(warm)));
  return conns;
}

export function request(path: string): Buffer {
  return Buffer.from(`GET ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: keep-alive\r\n\r\n`, 'latin1');
}

/** The same request on every connection, written in one go. */
export async function burst(conns: Connection[], path: string): Promise<BurstAnswer[]> {
  const bytes = request(path);
  try {
    return await Promise.all(conns.map((c) => c.send(bytes)));
  } finally {
    for (const c of conns) c.close();
  }
}
