import { Logger } from '@nestjs/common';
import { createClient, type RedisClientType } from 'redis';
import { startRedis, type RedisProcess } from '../../../test/support/redis-server';
import { measure } from '../../../test/support/traffic';
import { RedisUnavailableError } from '../../cache/redis-guard';
import { GatewayError } from '../../common/gateway.errors';
import { upstreamBusy, upstreamFailed, upstreamTimeout } from '../nominatim/upstream-errors';
import { FillLock, type FillLockOptions } from './fill-lock';
import type { Resolution } from './places-cache.service';
import { type FillOutcome, SingleFlight } from './single-flight';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe(FillLock.name, () => {
  let redis: RedisProcess;
  const clients: RedisClientType[] = [];
  const locks: { lock: FillLock; flights: SingleFlight }[] = [];
  let prefixSeq = 0;

  beforeAll(async () => {
    redis = await startRedis();
  });

  afterAll(async () => {
    await redis?.stop();
  });

  let warn: jest.SpyInstance;
  beforeEach(() => {
    warn = jest.spyOn(Logger.prototype, 'warn').mockImplementation(() => undefined);
  });

  afterEach(async () => {
    warn.mockRestore();
    await Promise.all(
      locks.splice(0).map(({ lock, flights }) => {
        flights.stop();
        return lock.stop();
      }),
    );
    await Promise.all(clients.splice(0).map((c) => c.disconnect().catch(() => undefined)));
  });

  async function connect(): Promise<RedisClientType> {
    const client = createClient({ url: redis.url, disableOfflineQueue: true }) as RedisClientType;
    client.on('error', () => undefined);
    clients.push(client);
    await client.connect();
    return client;
  }

  /**
   * Several "instances" sharing one prefix, each with its own command and pub/sub connections, and its
   * SingleFlight, which keeps who waits on the lock.
   */
  async function instances(count: number, overrides: Partial<FillLockOptions> = {}) {
    const options: FillLockOptions = { keyPrefix: `lock-spec:${++prefixSeq}:`, leaseMs: 10_000, opTimeoutMs: 500, ...overrides };
    return Promise.all(
      Array.from({ length: count }, async () => {
        const client = await connect();
        const subscriber = client.duplicate();
        subscriber.on('error', () => undefined);
        clients.push(subscriber);
        await subscriber.connect();
        const lock = new FillLock(client, subscriber, options);
        const flights = new SingleFlight(lock);
        locks.push({ lock, flights });
        await lock.start();
        return { lock, flights, client, channel: `${options.keyPrefix}filled`, lockKey: (key: string) => `${options.keyPrefix}lock:${key}` };
      }),
    );
  }

  it('lets exactly one of two concurrent acquirers win, with a lease', async () => {
    const [a, b] = await instances(2);
    const tokens = await Promise.all([a.lock.tryAcquire('q1'), b.lock.tryAcquire('q1')]);
    expect(tokens.filter((t) => t !== null)).toHaveLength(1);
    const pttl = await a.client.pTTL(a.lockKey('q1'));
    expect(pttl).toBeGreaterThan(9000);
    expect(pttl).toBeLessThanOrEqual(10_000);
  });

  it('wakes a waiter in another instance on the notification, well before the next poll', async () => {
    const [holder, waiter] = await instances(2); // poll every 250 ms
    const token = await holder.lock.tryAcquire('q2');
    expect(token).not.toBeNull();
    await expect(waiter.lock.tryAcquire('q2')).resolves.toBeNull();

    const outcome = waiter.flights.waitForFill('q2', 5000);
    await sleep(100); // past the first, immediate existence check
    const woken = await measure(async () => {
      await holder.lock.notifyFilled('q2');
      return outcome;
    });
    expect(woken.result).toBe('filled'); // the poll can only ever report 'released'
    // ~1 ms when idle: well before the next poll (250 ms), less whatever this process was not scheduled.
    expect(woken.ownMs < 250 / 2 ? 'at once' : woken.detail).toBe('at once');
    await holder.lock.release('q2', token!);
  });

  it('wakes waiters in the same instance directly on notifyFilled', async () => {
    const [holder] = await instances(1);
    await holder.lock.tryAcquire('q3');
    const outcomes = Promise.all([holder.flights.waitForFill('q3', 5000), holder.flights.waitForFill('q3', 5000)]);
    await holder.lock.notifyFilled('q3');
    await expect(outcomes).resolves.toEqual(['filled', 'filled']);
  });

  it("passes the holder's failed upstream call to a waiter in another instance, at once and field for field", async () => {
    const [holder, waiter] = await instances(2); // poll every 250 ms
    const token = await holder.lock.tryAcquire('f1');
    const outcome = waiter.flights.waitForFill('f1', 5000);
    await sleep(100); // past the first, immediate existence check
    const error = upstreamBusy('Nominatim is refusing requests for now; try again later', 'upstream_refused', 7, 429);
    const woken = await measure(async () => {
      await holder.lock.notifyFailed('f1', error);
      return outcome;
    });
    expect(typeof woken.result).toBe('object');
    const failed = (woken.result as { failed: GatewayError }).failed;
    expect(failed).toBeInstanceOf(GatewayError);
    expect(failed.getStatus()).toBe(503);
    expect(failed.getResponse()).toEqual(error.getResponse()); // status, message and code: the body clients get
    expect(failed.message).toBe(error.message);
    expect(failed.code).toBe('upstream_refused');
    expect(failed.retryAfterSeconds).toBe(7);
    expect(failed.upstreamStatus).toBe(429);
    // Before the next poll (250 ms): the poll could only ever report 'released'.
    expect(woken.ownMs < 250 / 2 ? 'at once' : woken.detail).toBe('at once');
    await holder.lock.release('f1', token!);
  });

  it("wakes waiters in the same instance directly on notifyFailed, and leaves other keys' waiters waiting", async () => {
    const [holder] = await instances(1);
    await holder.lock.tryAcquire('f2');
    await holder.lock.tryAcquire('f3');
    const outcomes = Promise.all([holder.flights.waitForFill('f2', 5000), holder.flights.waitForFill('f2', 5000)]);
    const other = holder.flights.waitForFill('f3', 300);
    const error = upstreamTimeout(1500);
    await holder.lock.notifyFailed('f2', error);
    await expect(outcomes).resolves.toEqual([{ failed: error }, { failed: error }]);
    await expect(other).resolves.toBe('timeout');
  });

  it('sends a fill notice as the bare key (what instances of the code before failure notices send and read), and a failure notice they cannot take for a key', async () => {
    const [holder, waiter] = await instances(2);
    const listener = await connect();
    const subscriber = listener.duplicate();
    clients.push(subscriber);
    await subscriber.connect();
    const heard: string[] = [];
    let heardTwo: () => void;
    const twoHeard = new Promise<void>((resolve) => (heardTwo = resolve));
    await subscriber.subscribe(holder.channel, (message) => {
      if (heard.push(message) === 2) heardTwo();
    });

    await holder.lock.notifyFilled('f4');
    await holder.lock.notifyFailed('f4', upstreamFailed('status 500', 500));
    await twoHeard;
    expect(heard[0]).toBe('f4');
    expect(heard[1]).not.toBe('f4'); // an old instance looks the message up as a key: no waiter of 'f4' wakes
    expect(JSON.parse(heard[1])).toMatchObject({ key: 'f4', failed: { status: 502, code: 'upstream_error', upstreamStatus: 500 } });

    // And the other way round: an old instance's fill notice (the key, published as is) wakes a new waiter.
    await holder.lock.tryAcquire('f5');
    const outcome = waiter.flights.waitForFill('f5', 5000);
    await holder.client.publish(holder.channel, 'f5');
    await expect(outcome).resolves.toBe('filled');
  });

  it('takes a failure notice that comes just after the poll found the lock released (two connections: either may be read first)', async () => {
    const [holder, waiter] = await instances(2, { leaseMs: 400 }); // poll every 100 ms
    const token = await holder.lock.tryAcquire('f7');
    const exists = waiter.client.exists.bind(waiter.client) as (key: string) => Promise<number>;
    // The holder published, then released; this process reads the poll's answer before the notice.
    jest.spyOn(waiter.client, 'exists').mockImplementation((async (key: string) => {
      const n = await exists(key);
      if (n === 0) void holder.client.publish(holder.channel, JSON.stringify({ key: 'f7', failed: { status: 504, code: 'upstream_timeout', message: 'late' } }));
      return n;
    }) as typeof waiter.client.exists);
    const outcome = waiter.flights.waitForFill('f7', 3000);
    await sleep(20); // past the first, immediate existence check
    await holder.lock.release('f7', token!);
    const seen = await outcome;
    expect(typeof seen === 'object' ? seen.failed.code : seen).toBe('upstream_timeout');
  });

  it('waits a grace for a failure notice that comes a moment after the poll found the lock released (timers and notice in the test\'s hands)', async () => {
    const [holder, waiter] = await instances(2, { leaseMs: 400 }); // poll every 100 ms
    const token = await holder.lock.tryAcquire('f8');
    // Each lock check's answer, as the waiter's poll receives it.
    const isHeld = waiter.lock.isHeld.bind(waiter.lock);
    let answer!: (held: boolean) => void;
    let nextAnswer = new Promise<boolean>((resolve) => (answer = resolve));
    jest.spyOn(waiter.lock, 'isHeld').mockImplementation(async (key) => {
      const held = await isHeld(key);
      const give = answer;
      nextAnswer = new Promise<boolean>((resolve) => (answer = resolve));
      give(held);
      return held;
    });
    // Only timers are the test's: Redis I/O and the promise machinery run as they do.
    jest.useFakeTimers({ doNotFake: ['nextTick', 'setImmediate', 'queueMicrotask'] });
    try {
      let seen: FillOutcome | undefined;
      const firstCheck = nextAnswer;
      const outcome = waiter.flights.waitForFill('f8', 3000).then((o) => (seen = o));
      expect(await firstCheck).toBe(true); // the immediate check, before the release
      const secondCheck = nextAnswer;
      await holder.lock.release('f8', token!);
      await jest.advanceTimersByTimeAsync(100); // the next poll
      expect(await secondCheck).toBe(false);
      await new Promise((resolve) => setImmediate(resolve)); // the poll has taken the answer in
      await jest.advanceTimersByTimeAsync(1); // the notice comes a millisecond later
      expect(seen).toBeUndefined();
      await holder.client.publish(holder.channel, JSON.stringify({ key: 'f8', failed: { status: 504, code: 'upstream_timeout', message: 'late' } }));
      await outcome;
      expect(typeof seen === 'object' ? seen.failed.code : seen).toBe('upstream_timeout');
    } finally {
      jest.useRealTimers();
    }
  });

  it('ignores a notice it cannot read, and still hears the next one', async () => {
    const [holder, waiter] = await instances(2);
    const token = await holder.lock.tryAcquire('f6');
    const outcome = waiter.flights.waitForFill('f6', 3000);
    let settled = false;
    void outcome.then(() => (settled = true));
    const unreadable = ['{not json', JSON.stringify({ key: 'f6', failed: { status: 'bad', code: 'x', message: 'y' } }), JSON.stringify({ key: 'f6' })];
    for (const notice of unreadable) await holder.client.publish(holder.channel, notice);
    await sleep(50);
    expect(settled).toBe(false);
    await holder.lock.notifyFailed('f6', upstreamFailed('status 500', 500));
    const seen = await outcome;
    expect(typeof seen === 'object' && seen.failed.getStatus()).toBe(502);
    await holder.lock.release('f6', token!);
  });

  it("lets a waiter see 'released' when a crashed holder's lease expires", async () => {
    const [holder, waiter] = await instances(2, { leaseMs: 300 }); // poll every 75 ms
    await expect(holder.lock.tryAcquire('q4')).resolves.not.toBeNull();
    const waited = await measure(() => waiter.flights.waitForFill('q4', 3000));
    expect(waited.result).toBe('released');
    expect(waited.ms).toBeGreaterThanOrEqual(250);
    // At the lease's end (300 ms) and a poll (75 ms), with a margin; stalls of the whole process taken out.
    expect(waited.ownMs < 300 + 75 + 300 ? 'at the lease end' : waited.detail).toBe('at the lease end');
    await expect(waiter.lock.tryAcquire('q4')).resolves.not.toBeNull();
  });

  it("lets a waiter see 'released' when the holder gives up without filling", async () => {
    const [holder, waiter] = await instances(2, { leaseMs: 400 }); // poll every 100 ms
    const token = await holder.lock.tryAcquire('q5');
    const outcome = waiter.flights.waitForFill('q5', 3000);
    await sleep(20);
    await holder.lock.release('q5', token!);
    await expect(outcome).resolves.toBe('released');
  });

  it('does nothing when a non-holder releases', async () => {
    const [holder, other] = await instances(2);
    const token = await holder.lock.tryAcquire('q6');
    await other.lock.release('q6', 'not-the-token');
    await expect(holder.client.get(holder.lockKey('q6'))).resolves.toBe(token);
    await holder.lock.release('q6', token!);
    await expect(holder.client.exists(holder.lockKey('q6'))).resolves.toBe(0);
  });

  it("resolves 'timeout' when the holder neither fills nor releases in time", async () => {
    const [holder, waiter] = await instances(2);
    await holder.lock.tryAcquire('q7');
    await expect(waiter.flights.waitForFill('q7', 100)).resolves.toBe('timeout');
  });

  it('shares one existence poll between the waiters of a key', async () => {
    const [holder, waiter] = await instances(2, { leaseMs: 400 }); // poll every 100 ms
    await holder.lock.tryAcquire('q8');
    const exists = jest.spyOn(waiter.client, 'exists');
    const outcomes = await Promise.all(Array.from({ length: 20 }, () => waiter.flights.waitForFill('q8', 350)));
    expect(outcomes.every((o) => o === 'timeout')).toBe(true);
    expect(exists.mock.calls.length).toBeGreaterThanOrEqual(2);
    expect(exists.mock.calls.length).toBeLessThanOrEqual(5);
    await sleep(150);
    const callsAfterwards = exists.mock.calls.length;
    await sleep(150);
    expect(exists.mock.calls.length).toBe(callsAfterwards); // no poll left behind
  });

  it("throws from tryAcquire when the app's guard refuses Redis", async () => {
    const [instance] = await instances(1);
    const refusing = new FillLock(instance.client, instance.client, {
      keyPrefix: 'lock-spec:guarded:',
      leaseMs: 1000,
      opTimeoutMs: 500,
      guard: () => Promise.reject(new Error('Redis unavailable: frozen')),
    });
    await expect(refusing.tryAcquire('q10')).rejects.toThrow('Redis unavailable: frozen');
    await expect(instance.client.exists('lock-spec:guarded:lock:q10')).resolves.toBe(0);
  });

  it("stops a wait with 'unavailable' as soon as a lock check finds Redis unusable (no notice can come)", async () => {
    const [holder] = await instances(1);
    await holder.lock.tryAcquire('q11');
    let refuse = false;
    const waiting = new FillLock(holder.client, holder.client, {
      keyPrefix: holder.lockKey('').slice(0, -'lock:'.length),
      leaseMs: 400, // poll every 100 ms
      opTimeoutMs: 500,
      guard: (op, call) => (refuse ? Promise.reject(new RedisUnavailableError('suspended after a timeout')) : call()),
    });
    const flights = new SingleFlight(waiting);
    const outcome = flights.waitForFill('q11', 5000);
    await sleep(150); // the lock is still there: keeps waiting
    refuse = true;
    const seen = await measure(() => outcome);
    expect(seen.result).toBe('unavailable');
    // At the next poll (100 ms), not at the wait's end (5 s); stalls of the whole process taken out.
    expect(seen.ownMs < 150 ? 'at the next poll' : seen.detail).toBe('at the next poll');
    flights.stop();
    await waiting.stop();
  });

  it('throws from tryAcquire when Redis cannot be reached, and stops cleanly', async () => {
    const [instance] = await instances(1);
    const pending = instance.flights.waitForFill('q9', 10_000);
    await instance.client.disconnect();
    await expect(instance.lock.tryAcquire('q9')).rejects.toThrow();
    instance.flights.stop();
    await instance.lock.stop();
    await expect(pending).resolves.toBe('timeout');
  });

  describe(SingleFlight.name, () => {
    const answer = {} as Resolution;

    it('lets requests join the running work of a key, never a background refresh, and forgets it once settled', async () => {
      const [instance] = await instances(1);
      let settle!: (r: Resolution) => void;
      const work = instance.flights.lead('s1', new Promise<Resolution>((resolve) => (settle = resolve)));
      expect(instance.flights.running('s1')).toBe(work);
      settle(answer);
      await work;
      expect(instance.flights.running('s1')).toBeUndefined();
      expect(instance.flights.busy('s1')).toBe(false);

      let refreshed!: () => void;
      const refresh = instance.flights.lead('s1', new Promise<undefined>((resolve) => (refreshed = () => resolve(undefined))), true);
      expect(instance.flights.running('s1')).toBeUndefined();
      expect(instance.flights.busy('s1')).toBe(true);
      refreshed();
      await refresh;
      expect(instance.flights.busy('s1')).toBe(false);
    });

    it("keeps a key's wait when the key is led again and that flight ends first, and settles it on the notice", async () => {
      const [holder, waiter] = await instances(2, { leaseMs: 400 }); // poll every 100 ms
      await holder.lock.tryAcquire('s2');
      // A background refresh waits for the other instance's fill; a request leads the key meanwhile.
      let ended: FillOutcome | undefined;
      const refresh = waiter.flights.lead('s2', waiter.flights.waitForFill('s2', 3000).then((o) => ((ended = o), answer)), true);
      let settle!: (r: Resolution | undefined) => void;
      const request = waiter.flights.lead('s2', new Promise<Resolution | undefined>((resolve) => (settle = resolve)));
      expect(waiter.flights.running('s2')).toBe(request);
      settle(undefined);
      await request;
      expect(waiter.flights.running('s2')).toBeUndefined();
      expect(waiter.flights.busy('s2')).toBe(false); // the refresh was replaced: a new one may start
      await sleep(150); // a poll or two: the lock is still held

      const woken = await measure(async () => {
        await holder.lock.notifyFilled('s2');
        return refresh;
      });
      expect(woken.result).toBe(answer);
      // Only the notice says 'filled' (the lock is still held: no poll ends the wait; its timeout is 3 s).
      expect(ended).toBe('filled');
    });

    it('wakes a wait in the same instance when its lock is released here, and leaves the running work alone', async () => {
      const [instance] = await instances(1);
      const token = await instance.lock.tryAcquire('s3');
      let settle!: (r: Resolution) => void;
      const work = instance.flights.lead('s3', new Promise<Resolution>((resolve) => (settle = resolve)));
      const outcome = instance.flights.waitForFill('s3', 5000);
      await sleep(50); // past the first, immediate existence check: the lock is held
      await instance.lock.release('s3', token!);
      await expect(outcome).resolves.toBe('released');
      expect(instance.flights.running('s3')).toBe(work);
      settle(answer);
      await work;
      expect(instance.flights.busy('s3')).toBe(false);
    });

    it("answers 'unavailable' at once without a fill lock (no Redis)", async () => {
      await expect(new SingleFlight(null).waitForFill('s4', 5000)).resolves.toBe('unavailable');
    });
  });
});
