import net from 'node:net';
import { OperationTimeoutError, withTimeout } from './with-timeout';

describe(withTimeout.name, () => {
  it('resolves with the value when the promise settles in time', async () => {
    await expect(withTimeout(Promise.resolve(42), 50, 'answer')).resolves.toBe(42);
  });

  it('passes the original rejection through', async () => {
    const boom = new Error('boom');
    await expect(withTimeout(Promise.reject(boom), 50, 'answer')).rejects.toBe(boom);
  });

  it('rejects with OperationTimeoutError naming the operation when too slow', async () => {
    const never = new Promise<never>(() => undefined);
    const error = await withTimeout(never, 20, 'redis GET').catch((e: unknown) => e);
    expect(error).toBeInstanceOf(OperationTimeoutError);
    expect(error).toMatchObject({ what: 'redis GET', timeoutMs: 20, message: 'redis GET timed out after 20 ms' });
  });

  // Jest 30 fails the running test on any unhandled rejection, so waiting past the late one checks it.
  it('leaves no unhandled rejection when the promise rejects after the timeout', async () => {
    const late = new Promise<never>((_, reject) => setTimeout(() => reject(new Error('late')), 30));
    await expect(withTimeout(late, 5, 'slow op')).rejects.toBeInstanceOf(OperationTimeoutError);
    await expect(new Promise((resolve) => setTimeout(() => resolve('waited'), 60))).resolves.toBe('waited');
  });

  it('clears its timer once the promise settles', async () => {
    const clear = jest.spyOn(global, 'clearTimeout');
    try {
      await withTimeout(Promise.resolve('ok'), 10_000, 'quick op');
      expect(clear).toHaveBeenCalledTimes(1);
    } finally {
      clear.mockRestore();
    }
  });
});

describe(`${withTimeout.name} after an event-loop stall`, () => {
  let server: net.Server;
  let client: net.Socket;
  let onRequest: (socket: net.Socket) => void = () => undefined;

  beforeAll(async () => {
    server = net.createServer((socket) => socket.on('data', () => onRequest(socket)));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    client = net.connect((server.address() as net.AddressInfo).port, '127.0.0.1');
    await new Promise((resolve) => client.once('connect', resolve));
  });

  afterAll(async () => {
    client.destroy();
    await new Promise((resolve) => server.close(resolve));
  });

  // The timer fires late, together with the reply that came in meanwhile: the reply wins. Here the
  // server (in this process) arms the timeout, writes the reply and then blocks the event loop.
  it('resolves with a reply that arrived while the event loop was blocked past the timeout', async () => {
    const reply = new Promise<string>((resolve) => client.once('data', (chunk: Buffer) => resolve(chunk.toString())));
    let bounded: Promise<string> | undefined;
    const requested = new Promise<void>((resolve) => {
      onRequest = (socket) => {
        bounded = withTimeout(reply, 20, 'ping');
        resolve();
        socket.write('PONG');
        const until = performance.now() + 100;
        while (performance.now() < until) {
          // a synchronous stretch longer than the timeout (a GC pause, a big JSON.parse, a starved CPU)
        }
      };
    });
    client.write('PING');
    await requested;
    await expect(bounded).resolves.toBe('PONG');
  });
});
