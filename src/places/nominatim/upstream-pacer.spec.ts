import { Logger } from '@nestjs/common';
import { createClient, type RedisClientType } from 'redis';
import { startRedis, type RedisProcess } from '../../../test/support/redis-server';
import { measure, type Stall, stalledDuring, watchEventLoop } from '../../../test/support/traffic';
import { CoolingDownError, QueueFullError } from './pacer-errors';
import type { UpstreamPacerOptions } from './pacer-contract';
import { UpstreamPacer } from './upstream-pacer';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Acquires and records when the caller was allowed to start (or why it was refused), on the
 * monotonic clock the pacer uses: the wall clock of a loaded VM was seen drifting 0.2 % from it.
 */
type Timed = { startedAt: number; wallAt: number; waitedMs: number; mode: 'redis' | 'local' } | { error: unknown; at: number; wallAt: number };

async function timedAcquire(pacer: UpstreamPacer): Promise<Timed> {
  try {
    const grant = await pacer.acquire();
    return { startedAt: performance.now(), wallAt: Date.now(), ...grant };
  } catch (error) {
    return { error, at: performance.now(), wallAt: Date.now() };
  }
}

function gaps(startTimes: number[]): number[] {
  const sorted = [...startTimes].sort((a, b) => a - b);
  return sorted.slice(1).map((t, i) => t - sorted[i]);
}

/**
 * Gaps between the grants, less the event-loop stalls of this process between them: on a loaded
 * machine a grant can be seen late because the process was not scheduled, which is not the pacer's
 * schedule. (Upper bounds only: a stall never makes a gap look shorter than the pacer kept it.)
 */
function ownGaps(grants: Array<{ startedAt: number; wallAt: number }>, stalls: Stall[]): number[] {
  const sorted = [...grants].sort((a, b) => a.startedAt - b.startedAt);
  return sorted.slice(1).map((g, i) => g.startedAt - sorted[i].startedAt - stalledDuring(stalls, sorted[i].wallAt, g.wallAt));
}

/** How late this test may see a grant after the pacer made it (resolution and a timer's tick). */
const TICK_MS = 2;

/**
 * The local slots `pacer` reserves from now on, on its own clock, in order. Without a guard nothing
 * spaces the real starts (a start woken late comes closer to the next one: 39 ms of 160 seen in a
 * loaded CI run), so a test of the slot spacing judges the slots, and the starts by never coming before theirs.
 */
function recordLocalSlots(pacer: UpstreamPacer): () => number[] {
  const spy = jest.spyOn(pacer as unknown as { reserveLocal: (maxWaitMs: number) => number }, 'reserveLocal');
  return () => spy.mock.results.filter((r) => r.type === 'return').map((r) => r.value as number).sort((a, b) => a - b);
}

/**
 * The starts `pacers` granted, on their own clock (the moment each let a caller go), in order: what the
 * pacer keeps apart. A caller's own clock reading after its await comes later by however long its
 * continuation waited, which differs from caller to caller: two starts the pacer made 100 ms apart were
 * read 99.97 ms apart that way in a loaded CI run.
 */
function recordStarts(...pacers: UpstreamPacer[]): () => number[] {
  const spies = pacers.map((p) => jest.spyOn(p as unknown as { started: (startAt: number, signalsSend: boolean) => () => void }, 'started'));
  return () => spies.flatMap((spy) => spy.mock.calls.map((call) => call[0])).sort((a, b) => a - b);
}

/** Each start, in order, at or after its slot (in order): a start may be late, never early. */
function expectStartsNotBeforeSlots(starts: number[], slots: number[]): void {
  const sorted = [...starts].sort((a, b) => a - b);
  expect(sorted).toHaveLength(slots.length);
  sorted.forEach((start, i) => expect(start).toBeGreaterThanOrEqual(slots[i] - TICK_MS));
}

const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)];

describe(UpstreamPacer.name, () => {
  let redis: RedisProcess;
  const clients: RedisClientType[] = [];
  let prefixSeq = 0;
  let warn: jest.SpyInstance;

  beforeAll(async () => {
    redis = await startRedis();
  });

  afterAll(async () => {
    await redis?.stop();
  });

  beforeEach(() => {
    warn = jest.spyOn(Logger.prototype, 'warn').mockImplementation(() => undefined);
  });

  afterEach(async () => {
    warn.mockRestore();
    await Promise.all(clients.splice(0).map((c) => c.disconnect().catch(() => undefined)));
  });

  /** One "instance": its own connection, as two app processes would have. */
  async function connect(): Promise<RedisClientType> {
    const client = createClient({
      url: redis.url,
      disableOfflineQueue: true,
      socket: { reconnectStrategy: () => 50 },
    }) as RedisClientType;
    client.on('error', () => undefined);
    clients.push(client);
    await client.connect();
    return client;
  }

  // The guard is wider than the 10 ms default so that a loaded CI machine's event-loop lag rarely
  // makes a caller give its slot up (which is correct, but lengthens the run).
  function options(overrides: Partial<UpstreamPacerOptions> = {}): UpstreamPacerOptions {
    return { minIntervalMs: 200, maxWaitMs: 5000, keyPrefix: `pacer-spec:${++prefixSeq}:`, opTimeoutMs: 200, guardMs: 30, ...overrides };
  }

  const redisWarnings = () => warn.mock.calls.filter(([message]) => String(message).startsWith('Redis unavailable'));

  it('spaces 12 concurrent acquisitions from two instances at least minIntervalMs apart, one slot after another', async () => {
    const opts = options({ minIntervalMs: 200 });
    const [a, b] = [new UpstreamPacer(await connect(), opts), new UpstreamPacer(await connect(), opts)];
    const pacerStarts = recordStarts(a, b);

    const lag = watchEventLoop();
    const [t0, wall0] = [performance.now(), Date.now()];
    const results = await Promise.all(Array.from({ length: 12 }, (_, i) => timedAcquire(i % 2 ? a : b)));
    lag.stop();

    expect(results.map((r) => ('mode' in r ? r.mode : r.error))).toEqual(Array(12).fill('redis'));
    const grants = results.filter((r) => 'startedAt' in r);
    const starts = pacerStarts();
    expect(starts).toHaveLength(12);
    expect(Math.min(...gaps(starts))).toBeGreaterThanOrEqual(200);
    expect(starts[11] - starts[0]).toBeGreaterThanOrEqual(11 * 200);
    // A slot is given up, by design and logged, when the Redis reply came too late to place it within
    // guardMs (a loaded machine: Redis is another process, its delays are not this one's stalls); its
    // caller queues again a whole interval later. The schedule's shape holds when none was given up.
    const slotsGivenUp = warn.mock.calls.some(([message]) => String(message).startsWith('Upstream slot missed'));
    if (!slotsGivenUp) {
      // A strict next-slot schedule: back to back at interval + guard, no window-sized gaps.
      expect(median(ownGaps(grants, lag.stalls))).toBeLessThan(230 + 10);
      // The first caller does not wait for a slot.
      const first = grants.reduce((x, y) => (y.startedAt < x.startedAt ? y : x));
      expect(first.startedAt - t0 - stalledDuring(lag.stalls, wall0, first.wallAt)).toBeLessThan(230);
    }
  });

  it('gives a slot up rather than start late and too close to the next instance', async () => {
    const opts = options({ minIntervalMs: 100, guardMs: 20 }); // slots 120 ms apart
    const [a, b] = [new UpstreamPacer(await connect(), opts), new UpstreamPacer(await connect(), opts)];
    const pacerStarts = recordStarts(a, b);
    const until = async (condition: () => boolean) => {
      while (!condition()) await sleep(2);
    };
    await a.acquire(); // slot 0
    const bFirst = timedAcquire(b); // slot 120
    await until(() => b.waiting === 1);
    const aLate = timedAcquire(a); // slot 240
    await until(() => a.waiting === 1);
    const bSecond = timedAcquire(b); // slot 360
    await until(() => b.waiting === 2);

    const first = await bFirst;
    const stallUntil = performance.now() + 170; // a long GC pause, say, across a's slot but not b's next
    while (performance.now() < stallUntil);

    const [late, second] = await Promise.all([aLate, bSecond]);
    expect([first, late, second].every((r) => 'startedAt' in r)).toBe(true);
    expect(late).toMatchObject({ mode: 'redis' });
    // Starting at the end of the stall would have put a 70 ms before b's next slot; a queued again.
    expect(pacerStarts()).toHaveLength(4); // a's first, then these three
    expect(Math.min(...gaps(pacerStarts()))).toBeGreaterThanOrEqual(100);
    expect(warn.mock.calls.some(([message]) => String(message).startsWith('Upstream slot missed'))).toBe(true);
  });

  /** `n` callers at once that each say their request was sent `sendDelayMs()` after their grant. */
  async function sendingCallers(pacer: UpstreamPacer, n: number, sendDelayMs: () => number) {
    return Promise.all(
      Array.from({ length: n }, async () => {
        const grant = await pacer.acquire(undefined, true);
        const startedAt = performance.now();
        const delay = sendDelayMs();
        if (delay > 0) await sleep(delay);
        const sentAt = performance.now();
        grant.sent();
        return { startedAt, sentAt, mode: grant.mode };
      }),
    );
  }

  /** Start of each request less the send of the one before it (in start order). */
  function startAfterPreviousSend(calls: Array<{ startedAt: number; sentAt: number }>): number[] {
    const sorted = [...calls].sort((x, y) => x.startedAt - y.startedAt);
    return sorted.slice(1).map((c, i) => c.startedAt - sorted[i].sentAt);
  }

  it('at 50/s spaces requests from when the one before was really sent, never closer than the window (19 ms)', async () => {
    const pacer = new UpstreamPacer(await connect(), options({ minIntervalMs: 20, guardMs: undefined }));
    expect(pacer.pacing).toMatchObject({ mode: 'allowance', slotIntervalUs: 21_000, localGapUs: 19_000 });
    // Sends that lag their grant by up to 8 ms (a new connection, a busy loop): spacing counted from
    // the grant would let the next request leave up to 8 ms early.
    let i = 0;
    const calls = await sendingCallers(pacer, 40, () => [0, 8, 1, 5][i++ % 4]);
    expect(calls.every((c) => c.mode === 'redis')).toBe(true);
    const sorted = [...calls].sort((x, y) => x.startedAt - y.startedAt);
    const sentGaps = gaps(sorted.map((c) => c.sentAt));
    expect(Math.min(...startAfterPreviousSend(calls))).toBeGreaterThanOrEqual(19 - 0.01);
    expect(Math.min(...sentGaps)).toBeGreaterThanOrEqual(19 - 0.01);
    // The budget holds: 40 requests take at least 39 slots' time.
    expect(sorted[39].startedAt - sorted[0].startedAt).toBeGreaterThanOrEqual(39 * 21 - 2);
  });

  it('strict at 5/s: a request sent late pushes the next one back to a full interval after it', async () => {
    const pacer = new UpstreamPacer(await connect(), options({ minIntervalMs: 200, guardMs: 30 }));
    const calls = await sendingCallers(pacer, 4, () => 60);
    expect(Math.min(...startAfterPreviousSend(calls))).toBeGreaterThanOrEqual(200 - 0.01);
  });

  describe('a late send, between instances (strict pacing)', () => {
    /** Two instances of one fleet: their own connections, one schedule. */
    async function fleet(overrides: Partial<UpstreamPacerOptions>) {
      const shared = options(overrides);
      const a = new UpstreamPacer(await connect(), shared);
      const b = new UpstreamPacer(await connect(), shared);
      return { a, b, shared };
    }

    /** a's caller sends `sendDelayMs` after its grant; b's, queued behind it, sends at once. */
    async function aThenB(a: UpstreamPacer, b: UpstreamPacer, sendDelayMs: number) {
      const bStarts = recordStarts(b);
      const aSide = (async () => {
        const grant = await a.acquire(undefined, true);
        const startedAt = performance.now();
        await sleep(sendDelayMs);
        const sentAt = performance.now();
        grant.sent();
        return { startedAt, sentAt };
      })();
      await sleep(5); // b asks second
      const bSide = b.acquire(undefined, true).then((grant) => grant.sent());
      const [aCall] = await Promise.all([aSide, bSide]);
      return { ...aCall, bStartedAt: bStarts()[0] };
    }

    it("holds the other instance's next start until a full interval after a send that left later than the guard", async () => {
      const { a, b } = await fleet({ minIntervalMs: 200, guardMs: 10 });
      // 80 ms from start to socket: a new TLS connection to a distant server, say. b's slot is 210 ms
      // after a's: on time, b's request would reach the upstream 130 ms after a's.
      const run = await aThenB(a, b, 80);
      expect(run.bStartedAt - run.sentAt).toBeGreaterThanOrEqual(200 - 0.01);
    });

    it('sets no hold for a request that failed before it was written (nothing reached the upstream)', async () => {
      const { a, shared } = await fleet({ minIntervalMs: 200, guardMs: 10 });
      const hold = () => clients[0].exists(`${shared.keyPrefix}pacer:hold`);
      const failed = await a.acquire(undefined, true);
      await sleep(80);
      failed.sent(false); // a connect that failed after 80 ms
      await sleep(20);
      expect(await hold()).toBe(0);
      const written = await a.acquire(undefined, true);
      await sleep(80);
      written.sent(); // the same delay, written: the fleet is held (the flag is set in the background)
      for (let i = 0; i < 50 && (await hold()) === 0; i++) await sleep(20);
      expect(await hold()).toBe(1);
    });

    it('costs nothing when the send is on time: the next instance starts at its slot', async () => {
      const { a, b, shared } = await fleet({ minIntervalMs: 200, guardMs: 10 });
      const aStarts = recordStarts(a);
      const run = await aThenB(a, b, 0);
      // Slots 210 ms apart on Redis's clock, placed on each instance's within a round trip.
      expect(run.bStartedAt - aStarts()[0]).toBeGreaterThanOrEqual(200);
      expect(run.bStartedAt - aStarts()[0]).toBeLessThan(210 + 10);
      expect(await clients[0].exists(`${shared.keyPrefix}pacer:hold`)).toBe(0);
      expect(warn.mock.calls.filter(([m]) => String(m).startsWith('Upstream slot missed'))).toEqual([]);
    });

    it('keeps the checks off the start: a Redis slower than the guard still grants every slot', async () => {
      // 10/s with a 5 ms guard, each Redis call 20 ms slower: a round trip between slot and start
      // would make every caller miss its window and queue again until maxWaitMs refused it.
      const slow = { ...options({ minIntervalMs: 100, guardMs: 5, maxWaitMs: 3000 }), guard: async <T>(_op: string, call: () => Promise<T>) => (await sleep(20), call()) };
      const pacer = new UpstreamPacer(await connect(), slow);
      const results = await Promise.all(Array.from({ length: 6 }, () => timedAcquire(pacer)));
      expect(results.map((r) => ('error' in r ? String(r.error) : r.mode))).toEqual(Array(6).fill('redis'));
    });

    it('a cool-down that fails callers sleeping for their slots leaves no slot pending: the next caller is served', async () => {
      const shared = options({ minIntervalMs: 200, guardMs: 10 });
      const pacer = new UpstreamPacer(await connect(), shared);
      await pacer.acquire();
      // Another instance's late send holds the fleet: the callers below wait it out too.
      await clients[0].set(`${shared.keyPrefix}pacer:hold`, '1', { PX: 500 });
      const queued = [pacer.acquire(), pacer.acquire()].map((p) => p.then(() => 'granted', (e: unknown) => (e instanceof CoolingDownError ? 'cooling' : String(e))));
      await sleep(250);
      await pacer.coolDown(100);
      expect(await Promise.all(queued)).toEqual(['cooling', 'cooling']);
      await sleep(150);
      const next = await Promise.race([pacer.acquire().then((g) => g.mode), sleep(2000).then(() => 'still waiting')]);
      expect(next).toBe('redis');
    });

  it('is not used above 20/s, where spacing is an allowance (95 % of the interval) rather than strict', async () => {
      const { a, b, shared } = await fleet({ minIntervalMs: 20, guardMs: undefined });
      await aThenB(a, b, 8);
      expect(await clients[0].exists(`${shared.keyPrefix}pacer:hold`)).toBe(0);
    });
  });

  it('voids the slots of a schedule Redis lost (FLUSHALL, a restart without persistence): they queue again behind the new one', async () => {
    const shared = options({ minIntervalMs: 200, guardMs: 10 });
    const a = new UpstreamPacer(await connect(), shared);
    const b = new UpstreamPacer(await connect(), shared);
    const starts = recordStarts(a, b);
    await a.acquire(); // started at once; the next three of a wait for their slots
    const queued = Array.from({ length: 3 }, () => a.acquire());
    await sleep(100);
    // What a restart without persistence or FLUSHALL does to this schedule (other tests' keys kept).
    await clients[0].del([`${shared.keyPrefix}pacer:next-us`, `${shared.keyPrefix}pacer:epoch`]);
    const flushedAt = performance.now();
    // b asks after the loss: a new schedule, its first slot now.
    const afterLoss = Array.from({ length: 2 }, () => b.acquire());
    const grants = await Promise.all([...queued, ...afterLoss]);
    expect(grants.every((g) => g.mode === 'redis')).toBe(true);
    // Every start after the loss comes from the new schedule: a full interval apart, none beside b's.
    const later = starts().filter((t) => t > flushedAt);
    expect(later).toHaveLength(5);
    expect(Math.min(...gaps(later))).toBeGreaterThanOrEqual(200);
    expect(warn.mock.calls.filter(([m]) => String(m).startsWith('Upstream pacing schedule lost'))).toHaveLength(1);
  });

  it('above 100/s runs on plain timers: no wait for the previous send, and the budget still holds on average', async () => {
    const pacer = new UpstreamPacer(await connect(), options({ minIntervalMs: 1, guardMs: undefined }));
    expect(pacer.pacing).toMatchObject({ mode: 'timer', slotIntervalUs: 1000, waitsForSend: false });
    // Callers that never say they sent: a pacer waiting for the send would hold each one SEND_WAIT_CAP (1 s).
    const t0 = performance.now();
    const run = await measure(() => Promise.all(Array.from({ length: 100 }, () => timedAcquire(pacer))));
    const starts = run.result.map((r) => ('startedAt' in r ? r.startedAt : NaN));
    expect(starts.every(Number.isFinite)).toBe(true);
    // The 100th slot is 99 slots after the first, which came after t0. (Starts themselves may bunch
    // when Redis's replies come later than their slots, as on a loaded machine.)
    expect(Math.max(...starts) - t0).toBeGreaterThanOrEqual(99 * 1 - 0.01);
    expect(run.ownMs < 1000 ? 'no send waits' : run.detail).toBe('no send waits');
    expect(warn.mock.calls.filter(([m]) => String(m).startsWith('Upstream slot missed'))).toEqual([]);
  });

  it('refuses at once with QueueFullError and a Retry-After when the next slot is beyond maxWaitMs', async () => {
    const opts = options({ minIntervalMs: 400, maxWaitMs: 1000 });
    const [a, b] = [new UpstreamPacer(await connect(), opts), new UpstreamPacer(await connect(), opts)];

    const lag = watchEventLoop();
    const [t0, wall0] = [performance.now(), Date.now()];
    const results = await Promise.all(Array.from({ length: 5 }, (_, i) => timedAcquire(i % 2 ? a : b)));
    lag.stop();

    // Slots at 0, 430 and 860 ms fit in 1000 ms; the next ones (1290 ms, 1720 ms) do not. (On a
    // badly loaded machine a caller may also give its slot up and then be refused the same way.)
    const refused = results.filter((r): r is { error: unknown; at: number; wallAt: number } => 'error' in r);
    expect(results.length - refused.length).toBeLessThanOrEqual(3);
    expect(refused.map((r) => r.error)).toEqual(refused.map(() => expect.any(QueueFullError)));
    // Not after waiting for a slot (the next is 430 ms away); stalls of the whole process taken out.
    const atOnce = refused.filter((r) => r.at - t0 - stalledDuring(lag.stalls, wall0, r.wallAt) < 400);
    expect(atOnce.length).toBeGreaterThanOrEqual(2);
    expect(atOnce.map((r) => (r.error as QueueFullError).retryAfterSeconds)).toEqual(atOnce.map(() => 2));
  });

  it('shares a cool-down between instances, and refuses callers already queued behind it', async () => {
    const opts = options({ minIntervalMs: 300 });
    const [a, b] = [new UpstreamPacer(await connect(), opts), new UpstreamPacer(await connect(), opts)];

    await expect(b.acquire()).resolves.toMatchObject({ mode: 'redis' });
    const queued = b.acquire().catch((e: unknown) => e); // its slot is ~330 ms away
    await sleep(50);
    expect(b.waiting).toBe(1);

    await a.coolDown(1500);
    expect(a.cooldownRemainingMs()).toBeGreaterThan(1000);
    await expect(a.acquire()).rejects.toBeInstanceOf(CoolingDownError);
    const seenByB = await b.acquire().catch((e: unknown) => e);
    expect(seenByB).toBeInstanceOf(CoolingDownError);
    expect((seenByB as CoolingDownError).retryAfterSeconds).toBe(2);
    expect(await queued).toBeInstanceOf(CoolingDownError); // set by another instance while it slept
    expect(b.waiting).toBe(0);
    expect(b.cooldownRemainingMs()).toBeGreaterThan(1000); // mirrored locally
  });

  it('wakes and refuses its own queued callers at once on a local cool-down, and honours it in redis mode', async () => {
    const pacer = new UpstreamPacer(await connect(), options({ minIntervalMs: 300 }));
    await pacer.acquire();
    const queued = pacer.acquire().catch((error: unknown) => error);
    await sleep(20);
    const refusal = await measure(async () => {
      await pacer.coolDown(300);
      return queued;
    });
    expect(refusal.result).toBeInstanceOf(CoolingDownError);
    // Not at its slot, 330 ms later (nearer now than then, whatever this process was not scheduled).
    expect(refusal.ownMs < 330 / 2 ? 'at once' : refusal.detail).toBe('at once');
    await expect(pacer.acquire()).rejects.toBeInstanceOf(CoolingDownError);
    await sleep(320);
    await expect(pacer.acquire()).resolves.toMatchObject({ mode: 'redis' });
  });

  it('keeps a longer cool-down already running', async () => {
    const opts = options();
    const client = await connect();
    const [a, b] = [new UpstreamPacer(client, opts), new UpstreamPacer(await connect(), opts)];
    await a.coolDown(2000);
    await b.coolDown(100);
    await expect(client.pTTL(`${opts.keyPrefix}pacer:cooldown`)).resolves.toBeGreaterThan(1800);
  });

  it('expires its keys when idle', async () => {
    const client = await connect();
    const opts = options({ minIntervalMs: 100 });
    await new UpstreamPacer(client, opts).acquire();
    const pttl = await client.pTTL(`${opts.keyPrefix}pacer:next-us`);
    expect(pttl).toBeGreaterThan(0);
    expect(pttl).toBeLessThanOrEqual(130);
  });

  it('resets a schedule left far in the future by a Redis clock step', async () => {
    const client = await connect();
    const opts = options({ minIntervalMs: 100, maxWaitMs: 500 });
    await client.set(`${opts.keyPrefix}pacer:next-us`, String((Date.now() + 3_600_000) * 1000), { PX: 10_000 });
    await expect(new UpstreamPacer(client, opts).acquire()).resolves.toMatchObject({ mode: 'redis' });
  });

  describe('in-memory mode', () => {
    it('is strict per process: next slot, not a window, bounded by maxWaitMs', async () => {
      const pacer = new UpstreamPacer(null, options({ minIntervalMs: 100, maxWaitMs: 650, guardMs: 0 }));
      const pacerStarts = recordStarts(pacer);
      const lag = watchEventLoop();
      const results = await Promise.all(Array.from({ length: 9 }, () => timedAcquire(pacer)));
      lag.stop();

      const granted = results.filter((r) => 'startedAt' in r);
      expect(granted).toHaveLength(7); // slots 0..600 ms; 700 ms is beyond maxWaitMs
      expect(granted.every((r) => r.mode === 'local')).toBe(true);
      expect(pacerStarts()).toHaveLength(7);
      expect(Math.min(...gaps(pacerStarts()))).toBeGreaterThanOrEqual(100);
      expect(median(ownGaps(granted, lag.stalls))).toBeLessThan(110);
      const refused = results.filter((r) => 'error' in r).map((r) => r.error);
      expect(refused).toEqual([expect.any(QueueFullError), expect.any(QueueFullError)]);
      expect(pacer.waiting).toBe(0);
    });

    it('runs locally when the client is not ready or reported unusable', async () => {
      const client = await connect();
      await expect(new UpstreamPacer(client, options(), () => false).acquire()).resolves.toMatchObject({ mode: 'local' });
      await client.disconnect();
      await expect(new UpstreamPacer(client, options()).acquire()).resolves.toMatchObject({ mode: 'local' });
    });

    it('takes its share of the budget when `processes` pace it (FLEET_INSTANCES × WEB_CONCURRENCY)', async () => {
      const pacer = new UpstreamPacer(null, options({ minIntervalMs: 50, maxWaitMs: 1000, guardMs: 0, processes: 3 }));
      const slots = recordLocalSlots(pacer);
      const granted = await Promise.all(Array.from({ length: 4 }, () => timedAcquire(pacer)));
      const starts = granted.map((r) => ('startedAt' in r ? r.startedAt : NaN));
      // Three processes each at 50 ms would ask 60/s together; each at 150 ms keeps the group at 20/s.
      expect(gaps(slots())).toEqual([150, 150, 150].map((ms) => expect.closeTo(ms, 6)));
      expectStartsNotBeforeSlots(starts, slots());
      expect(() => new UpstreamPacer(null, options({ processes: 0 }))).toThrow(RangeError);
      expect(() => new UpstreamPacer(null, options({ processes: 1.5 }))).toThrow(RangeError);
    });

    it('gives the slot up to an abort signal', async () => {
      const pacer = new UpstreamPacer(null, options({ minIntervalMs: 300 }));
      await pacer.acquire();
      const controller = new AbortController();
      const queued = pacer.acquire(controller.signal).catch((e: unknown) => e);
      controller.abort(new Error('client went away'));
      expect(await queued).toEqual(new Error('client went away'));
      expect(pacer.waiting).toBe(0);
    });
  });

  // Jest 30 fails the running test on any unhandled rejection: these cases wait a little at the end
  // so that a stray rejection from a failed Redis call would land inside them.
  describe('when Redis fails', () => {
    it('falls back to per-process pacing when Redis is killed mid-run, without unhandled rejections', async () => {
      const opts = options({ minIntervalMs: 100, maxWaitMs: 2000 });
      const [a, b] = [new UpstreamPacer(await connect(), opts), new UpstreamPacer(await connect(), opts)];
      const ownStarts = [recordStarts(a), recordStarts(b)];

      const before = await Promise.all(Array.from({ length: 4 }, (_, i) => timedAcquire(i % 2 ? a : b)));
      const inFlight = Array.from({ length: 6 }, (_, i) => timedAcquire(i % 2 ? a : b));
      await redis.kill();
      const after = await Promise.all([...inFlight, ...Array.from({ length: 4 }, (_, i) => timedAcquire(i % 2 ? a : b))]);

      expect(before.map((r) => ('mode' in r ? r.mode : r.error))).toEqual(['redis', 'redis', 'redis', 'redis']);
      expect(after.every((r) => 'mode' in r)).toBe(true);
      expect(after.slice(-4).map((r) => ('mode' in r ? r.mode : undefined))).toEqual(['local', 'local', 'local', 'local']);
      // Each instance stays strict on its own, across the switch.
      for (const own of ownStarts) {
        expect(own()).toHaveLength(7);
        expect(Math.min(...gaps(own()))).toBeGreaterThanOrEqual(100);
      }
      expect(redisWarnings()).toHaveLength(2); // once per instance, not once per call
      await sleep(100);
      await redis.restart();
    }, 15_000);

    it('paces at its share of the budget while Redis is frozen, and says so once', async () => {
      const pacer = new UpstreamPacer(await connect(), options({ minIntervalMs: 40, guardMs: 0, opTimeoutMs: 50, processes: 4 }));
      const slots = recordLocalSlots(pacer);
      await redis.pause();
      try {
        const granted = await Promise.all(Array.from({ length: 4 }, () => timedAcquire(pacer)));
        expect(granted.map((r) => ('mode' in r ? r.mode : r.error))).toEqual(['local', 'local', 'local', 'local']);
        const starts = granted.map((r) => ('startedAt' in r ? r.startedAt : NaN));
        expect(gaps(slots())).toEqual([160, 160, 160].map((ms) => expect.closeTo(ms, 6)));
        expectStartsNotBeforeSlots(starts, slots());
        expect(redisWarnings().map(([message]) => String(message))).toEqual([expect.stringContaining('pacing per process at 6.25/s until it returns')]);
      } finally {
        await redis.resume();
      }
      await sleep(100);
    }, 15_000);

    describe('when Redis is usable again while callers wait on local slots', () => {
      /** Two instances of one fleet of two (each paces at half the rate without Redis); Redis unusable to both until `back()`. */
      async function twoInstances(overrides: Partial<UpstreamPacerOptions> = {}) {
        let usable = false;
        const shared = options({ minIntervalMs: 200, guardMs: 30, processes: 2, ...overrides });
        const a = new UpstreamPacer(await connect(), shared, () => usable);
        const b = new UpstreamPacer(await connect(), shared, () => usable);
        return { a, b, shared, back: () => (usable = true) };
      }

      it('queues them again behind the shared schedule: every start after the return is spaced across the fleet', async () => {
        const { a, b, back } = await twoInstances();
        const starts = recordStarts(a, b);
        // Each instance alone: its slots 400 ms apart (0, 400, ..., 2000 ms), in step with the other's.
        const calls = Array.from({ length: 12 }, (_, i) => timedAcquire(i % 2 ? a : b));
        await sleep(600); // between the local slots at 400 and 800 ms
        back();
        const backAt = performance.now();
        const results = await Promise.all(calls);

        const later = starts().filter((t) => t > backAt);
        // Local slots drained in step would start pairs 0 ms apart.
        expect(Math.min(...gaps(later))).toBeGreaterThanOrEqual(200);
        expect(later.length).toBeGreaterThanOrEqual(7);
        expect(results.filter((r) => 'error' in r)).toEqual([]);
        expect(results.some((r) => 'mode' in r && r.mode === 'redis')).toBe(true);
      }, 15_000);

      it('refuses (QueueFullError) one whose shared slot would come past its queue wait, rather than start it beside the shared slots', async () => {
        const { a, shared: opts, back } = await twoInstances({ maxWaitMs: 1000 });
        const c = new UpstreamPacer(await connect(), opts); // an instance that never lost Redis
        const starts = recordStarts(a, c);
        const local = Array.from({ length: 3 }, () => timedAcquire(a)); // local slots at 0, 400 and 800 ms
        const shared = Array.from({ length: 5 }, () => timedAcquire(c)); // shared slots at 0, 230, ..., 920 ms
        await sleep(100);
        back();
        const backAt = performance.now();
        const [aResults, cResults] = [await Promise.all(local), await Promise.all(shared)];

        expect(cResults.map((r) => ('mode' in r ? r.mode : String(r.error)))).toEqual(Array(5).fill('redis'));
        expect(aResults[0]).toMatchObject({ mode: 'local' });
        // The next shared slot (1150 ms) is past their bound (1000 ms from when they asked).
        expect(aResults.slice(1).map((r) => ('error' in r ? r.error : r.mode))).toEqual([expect.any(QueueFullError), expect.any(QueueFullError)]);
        expect(Math.min(...gaps(starts().filter((t) => t > backAt)))).toBeGreaterThanOrEqual(200);
      }, 15_000);

      it('starts them on their local slots when the queueing again fails (Redis frozen again)', async () => {
        const { a, back } = await twoInstances({ opTimeoutMs: 100 });
        const slots = recordLocalSlots(a);
        const starts = recordStarts(a);
        const requeued = jest.spyOn(a as unknown as { reserveShared: (maxWaitMs: number) => Promise<unknown> }, 'reserveShared');
        const calls = Array.from({ length: 3 }, () => timedAcquire(a)); // local slots at 0, 400 and 800 ms
        await sleep(100);
        await redis.pause();
        try {
          back(); // usable as far as the pacer can tell, but each call times out
          const results = await Promise.all(calls);
          expect(results.map((r) => ('mode' in r ? r.mode : String(r.error)))).toEqual(['local', 'local', 'local']);
          // The two not yet due when Redis looked usable asked for shared slots (and timed out).
          expect(requeued).toHaveBeenCalledTimes(2);
          // None lost, none given a new slot further away: each on the slot it had.
          expect(slots()).toHaveLength(3);
          expectStartsNotBeforeSlots(starts(), slots());
        } finally {
          await redis.resume();
        }
        await sleep(100);
      }, 15_000);
    });

    it("runs its Redis calls through the app's guard, and falls back when the guard refuses", async () => {
      const client = await connect();
      const ops: string[] = [];
      const counting = new UpstreamPacer(client, {
        ...options(),
        guard: (op, call) => {
          ops.push(op);
          return call();
        },
      });
      await expect(counting.acquire()).resolves.toMatchObject({ mode: 'redis' });
      // Its one call went through the guard. On a loaded machine the grant can come too late to use
      // (seen in a full run): the caller then queues again, which is logged, with another acquire and
      // the checks before the later slot, all through the guard too.
      const slotMissed = warn.mock.calls.some(([message]) => String(message).startsWith('Upstream slot missed'));
      const checks = ['pacer acquire', 'pacer slot check'];
      if (slotMissed) expect(ops.filter((op) => !checks.includes(op))).toEqual([]);
      else expect(ops).toEqual(['pacer acquire']);
      const refusing = new UpstreamPacer(client, { ...options(), guard: () => Promise.reject(new Error('Redis unavailable: frozen')) });
      await expect(refusing.acquire()).resolves.toMatchObject({ mode: 'local' });
    });

    it('falls back after opTimeoutMs when Redis is frozen', async () => {
      const pacer = new UpstreamPacer(await connect(), options({ opTimeoutMs: 100 }));
      await redis.pause();
      try {
        const grant = await measure(() => pacer.acquire());
        expect(grant.result).toMatchObject({ mode: 'local' });
        expect(grant.ms).toBeGreaterThanOrEqual(99);
        // After the op timeout, not when Redis resumes (after this block): 10 op timeouts is plenty.
        expect(grant.ownMs < 1000 ? 'after the op timeout' : grant.detail).toBe('after the op timeout');
        await expect(pacer.coolDown(50)).resolves.toBeUndefined(); // never rejects
      } finally {
        await redis.resume();
      }
      await sleep(100);
    }, 15_000);
  });
});
