import { RedisUnavailableError } from '../../cache/redis-guard';
import { OperationTimeoutError } from '../../cache/with-timeout';
import type { FillLock, FillNotice } from './fill-lock';
import type { Resolution } from './places-cache.service';

/**
 * How a wait for another holder's fill ended: what a notice said (see FillNotice), 'timeout' when its
 * own bound passed or the app stopped, 'unavailable' when Redis cannot be asked (down, frozen, or
 * skipped after a timeout), so no notice can come.
 */
export type FillOutcome = FillNotice | 'timeout' | 'unavailable';

/** Longest pause between two checks that a held lock still exists (a released or expired lease). */
const MAX_POLL_MS = 250;

/**
 * How long a lock found gone waits for a notice sent before its release. The holder's PUBLISH runs
 * before its DEL, but the notice comes on the pub/sub connection and the poll's answer on the command
 * connection: this process may read the answer first (seen in the e2e tests, on a loaded machine), and
 * would then take the lock and ask upstream again. Loopback or a LAN delivers the
 * notice within a millisecond or two; a lock that is really gone is taken over this much later.
 */
const NOTICE_GRACE_MS = 20;

/**
 * What single flight holds for one key. The two parts end apart: a flight's fill waits inside its
 * work, but a key can be led again while an earlier fill still waits (a background refresh is never
 * joined, and a no-cache request that finds the answer too old leads its own), so the wait belongs to
 * the key, not to one flight, and the entry lives while either part does.
 */
interface KeyFlight {
  /**
   * What runs for the key now; settles with its answer, or undefined when its leader gave up (refused,
   * gone). A background refresh (stale-while-revalidate) is here too, so that it runs once, but nobody
   * joins it: while it runs, the stale copy is what a request gets, at once.
   */
  work?: Promise<Resolution | undefined>;
  background: boolean;
  /** This process's fills waiting for another holder's (of any instance), and the one lock check they share. */
  wait?: Wait;
}

interface Wait {
  resolvers: Set<(outcome: FillOutcome) => void>;
  pollTimer?: NodeJS.Timeout;
}

/**
 * Single flight, in this process and across instances, with one map: per key, the work running (every
 * request for the key joins it) and the fills waiting for the fill lock's holder, woken by its notices
 * (FillLock reports them, this process's at once and other instances' by pub/sub) or by one coarse
 * existence poll per key when the lock disappears without one.
 */
export class SingleFlight {
  private readonly keys = new Map<string, KeyFlight>();
  private readonly pollMs: number;

  constructor(private readonly lock: FillLock | null) {
    this.pollMs = Math.max(10, Math.min(Math.floor((lock?.leaseMs ?? 0) / 4), MAX_POLL_MS));
    lock?.listen((key, notice) => this.settle(key, notice));
  }

  /** The work running for `key`, if any: a request for the key joins it instead of starting its own. */
  running(key: string): Promise<Resolution | undefined> | undefined {
    const flight = this.keys.get(key);
    return flight?.background ? undefined : flight?.work;
  }

  /** Whether any work runs for `key`, a background refresh included. */
  busy(key: string): boolean {
    return this.keys.get(key)?.work !== undefined;
  }

  /** Runs `work` as the one flight of `key` until it settles. */
  lead(key: string, work: Promise<Resolution | undefined>, background = false): Promise<Resolution | undefined> {
    const flight = this.entry(key);
    flight.work = work;
    flight.background = background;
    const forget = () => {
      const current = this.keys.get(key);
      if (current?.work !== work) return;
      current.work = undefined;
      current.background = false;
      this.dropIfIdle(key, current);
    };
    work.then(forget, forget);
    return work;
  }

  /**
   * Resolves 'filled' on the notice for `key`, `{ failed }` on a failure notice, 'released' when its
   * lock is gone (released without a fill, or its lease expired, or it was not held at all),
   * 'unavailable' as soon as a lock check finds Redis down or not answering in time (at once without a
   * fill lock), or 'timeout' after `timeoutMs`. But for `{ failed }`, the caller re-reads the cache and,
   * on a miss, may try to take the lock itself (or go without it).
   */
  waitForFill(key: string, timeoutMs: number): Promise<FillOutcome> {
    const lock = this.lock;
    if (lock === null) return Promise.resolve('unavailable');
    return new Promise<FillOutcome>((resolve) => {
      const flight = this.entry(key);
      const wait = flight.wait ?? { resolvers: new Set() };
      const isNew = flight.wait === undefined;
      flight.wait = wait;
      const timer = setTimeout(() => finish('timeout'), Math.max(0, timeoutMs));
      const finish = (outcome: FillOutcome) => {
        clearTimeout(timer);
        if (wait.resolvers.delete(finish) && wait.resolvers.size === 0) this.endWait(key, wait);
        resolve(outcome);
      };
      wait.resolvers.add(finish);
      if (isNew) void this.poll(lock, key, wait);
    });
  }

  /** Stops every poll and resolves the remaining waits with 'timeout'. */
  stop(): void {
    for (const key of [...this.keys.keys()]) this.settle(key, 'timeout');
  }

  private entry(key: string): KeyFlight {
    let flight = this.keys.get(key);
    if (flight === undefined) {
      flight = { background: false };
      this.keys.set(key, flight);
    }
    return flight;
  }

  private dropIfIdle(key: string, flight: KeyFlight): void {
    if (flight.work === undefined && flight.wait === undefined) this.keys.delete(key);
  }

  /** Whether `wait` is still the wait of `key` (not settled, not ended by its last waiter's timeout). */
  private waiting(key: string, wait: Wait): boolean {
    return this.keys.get(key)?.wait === wait;
  }

  private endWait(key: string, wait: Wait): void {
    clearTimeout(wait.pollTimer);
    const flight = this.keys.get(key);
    if (flight?.wait !== wait) return;
    flight.wait = undefined;
    this.dropIfIdle(key, flight);
  }

  private settle(key: string, outcome: FillOutcome): void {
    const wait = this.keys.get(key)?.wait;
    if (wait === undefined) return;
    this.endWait(key, wait);
    for (const finish of [...wait.resolvers]) finish(outcome);
  }

  /** One existence check per key, shared by all its waiters; the first runs at once. */
  private async poll(lock: FillLock, key: string, wait: Wait): Promise<void> {
    try {
      const held = await lock.isHeld(key);
      if (!this.waiting(key, wait)) return;
      if (!held) {
        wait.pollTimer = setTimeout(() => this.waiting(key, wait) && this.settle(key, 'released'), NOTICE_GRACE_MS);
        return;
      }
    } catch (error) {
      // A Redis that does not answer can neither deliver the holder's notice nor show its lock gone:
      // waiting would last until the waiters' own timeouts (a whole lease). They go without the lock.
      if (error instanceof RedisUnavailableError || error instanceof OperationTimeoutError) {
        if (this.waiting(key, wait)) this.settle(key, 'unavailable');
        return;
      }
      // Other trouble (e.g. a connection being replaced): keep waiting; the waiters' timeouts bound it.
    }
    if (this.waiting(key, wait)) wait.pollTimer = setTimeout(() => void this.poll(lock, key, wait), this.pollMs);
  }
}
