import { createClient, type RedisClientType } from 'redis';
import { startRedis, type RedisProcess } from '../../test/support/redis-server';
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
  let redis: RedisProcess;
  let client: RedisClientType;

  beforeAll(async () => {
    redis = await startRedis();
    client = createClient({ url: redis.url }) as RedisClientType;
    client.on('error', () => undefined);
    await client.connect();
  });

  afterAll(async () => {
    await client?.disconnect().catch(() => undefined);
    await redis?.stop();
  });

  // The timer fires late, together with the reply that came in meanwhile: the reply wins.
  it.each([1, 2, 3])('resolves with a reply that arrived while the event loop was blocked past the timeout (%i)', async () => {
    const reply = withTimeout(client.ping(), 20, 'redis PING');
    const until = performance.now() + 100;
    while (performance.now() < until) {
      // a synchronous stretch longer than the timeout (a GC pause, a big JSON.parse, a starved CPU)
    }
    await expect(reply).resolves.toBe('PONG');
  });
});
