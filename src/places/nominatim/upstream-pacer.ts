import { Logger } from '@nestjs/common';
import type { RedisCommandClient } from '../../cache/redis-commands';
import { refusedByRedis } from '../../cache/redis-guard';
import { withTimeout } from '../../cache/with-timeout';
import { PacingWindow, windowFor } from './pacing-arithmetic';
import { LocalSlots, type LocalSlot, type PlacedSlot, type SlotLoss } from './local-slots';
import { CoolingDownError, QueueFullError, retryAfterSeconds } from './pacer-errors';
import { Sleepers, toError } from './pacer-sleepers';
import { RedisClock } from './redis-clock';
import { SharedSchedule } from './shared-schedule';
import type { PacerGrant, PacerMode, UpstreamPacerOptions } from './pacer-contract';

/**
 * How long before its slot a sleeping caller checks it against Redis: the shared cool-down, the send
 * hold and the schedule's epoch, each possibly changed by another instance meanwhile (recheckShared);
 * before a local slot, whether Redis is usable again (beforeLocalSlot).
 */
const SLOT_CHECK_LEAD_MS = 50;
/** Longest a caller waits for the request before it to be sent; past it that one counts as sent now. */
const SEND_WAIT_CAP_MS = 1000;

/** A reserved slot: `local` for a slot this process gave itself. */
interface Reserved {
  place: () => PlacedSlot;
  mode: PacerMode;
  local?: LocalSlot;
}

/**
 * Global pacing of upstream (Nominatim) requests: at most one request start per `minIntervalMs` for
 * the whole application, however many instances share the Redis. Callers ask for a slot, sleep until
 * it comes and then start; a caller whose slot is further away than `maxWaitMs` is refused at once.
 *
 * Without a usable Redis (none configured, not ready, reported unhealthy, or a failed/slow call) the
 * same strict scheduler runs in-process at this process's share of the rate (`processes`), so the
 * fleet's total still holds, on average: processes no longer see each other's starts. Once Redis is
 * usable again, callers still waiting on local slots queue behind the shared schedule (LocalSlots.giveUp).
 */
export class UpstreamPacer {
  private readonly logger = new Logger(UpstreamPacer.name);
  private readonly intervalMs: number;
  private readonly now: () => number;
  /** The fleet's schedule in Redis (null without a client). */
  private readonly shared: SharedSchedule | null;
  /** The last schedule epoch found lost, so that it is logged once. */
  private lostEpoch?: string;
  private readonly sleepers: Sleepers;
  /** The slots this process gives itself without Redis, and its next start (shared slots included). */
  private readonly local: LocalSlots;
  /** When this process's last request left (its start until the caller says it was sent). */
  private lastSent = -Infinity;
  /** Settles when the latest granted request that signals its send has been sent. */
  private unsent: Promise<void> | null = null;
  /** Shared slots (Redis µs) granted to callers of this process that have not started yet. */
  private readonly pendingSlots = new Set<number>();
  private turn?: Promise<void>;
  private endTurn?: () => void;
  private localCoolDownUntil = -Infinity;
  private readonly window: PacingWindow;
  private readonly lateMs: number;
  private readonly localGapMs: number;
  private readonly horizonMs: number;
  /** Spacing of this process's own slots while it paces without Redis: its share of the budget. */
  private readonly localIntervalMs: number;
  private readonly clock = new RedisClock();
  private missedSlots = 0;
  /** pacing per process; `quiet` when Redis refused the pacing (the connection logs refusals) */
  private degraded: false | 'logged' | 'quiet' = false;

  constructor(
    private readonly client: RedisCommandClient | null,
    private readonly options: UpstreamPacerOptions,
    private readonly isRedisUsable: () => boolean = () => true,
  ) {
    if (!(options.minIntervalMs > 0)) throw new RangeError('minIntervalMs must be > 0');
    if (!(options.maxWaitMs >= 0)) throw new RangeError('maxWaitMs must be >= 0');
    const processes = options.processes ?? 1;
    if (!(Number.isInteger(processes) && processes >= 1)) throw new RangeError('processes must be an integer >= 1');
    this.window = windowFor(options.minIntervalMs * 1000, options.guardMs === undefined ? undefined : Math.max(0, options.guardMs) * 1000);
    this.intervalMs = this.window.slotIntervalUs / 1000;
    this.lateMs = this.window.lateUs / 1000;
    this.localGapMs = this.window.localGapUs / 1000;
    this.horizonMs = Math.ceil(options.maxWaitMs) + this.intervalMs;
    this.localIntervalMs = this.intervalMs * processes;
    this.local = new LocalSlots(this.localIntervalMs);
    this.now = options.now ?? (() => performance.now());
    this.sleepers = new Sleepers(this.now);
    this.shared = client === null ? null : new SharedSchedule(client, options.keyPrefix, (op, call) => this.redisCall(op, call));
  }

  /** Callers currently sleeping for their slot. */
  get waiting(): number {
    return this.sleepers.size;
  }

  /** The spacing in force (see pacing-arithmetic.ts). */
  get pacing(): PacingWindow {
    return this.window;
  }

  /**
   * Resolves when the caller may start its upstream request. Rejects with QueueFullError or
   * CoolingDownError (both carry retryAfterSeconds), or with the signal's reason when aborted; an
   * aborted caller's slot is not given back (pacing stays strict, one slot is lost). `signalsSend`:
   * the caller will call the grant's sent() when its request is written (see PacerGrant).
   */
  async acquire(signal?: AbortSignal, signalsSend = false): Promise<PacerGrant> {
    const askedAt = this.now();
    signal?.throwIfAborted();
    this.throwIfCoolingDownLocally();
    /** The local slot given up for a shared one, while that one is asked for. */
    let givenUp: LocalSlot | undefined;

    for (;;) {
      // A re-reservation after a missed slot must still fit in what is left of maxWaitMs.
      const { place, mode, local } = await this.reserve(Math.max(0, this.options.maxWaitMs - (this.now() - askedAt)), givenUp, askedAt + this.options.maxWaitMs);
      givenUp = undefined;
      try {
        if (local) await this.beforeLocalSlot(local, signal);
        if (place().lost === undefined) await this.sleepUntilSlot(place, mode === 'redis', signal);
      } catch (error) {
        place().release?.();
        throw error;
      }

      const startAt = this.now();
      const { slot, deadline, release, lost, epoch } = place();
      release?.();
      if (lost !== undefined) {
        if (lost === 'schedule') this.noteLostSchedule(epoch);
        if (lost === 'redis-back') givenUp = local;
        continue;
      }
      if (startAt <= deadline) return { waitedMs: startAt - askedAt, mode, sent: this.started(startAt, signalsSend, mode === 'redis' ? slot : undefined) };
      this.noteMissedSlot(startAt - slot);
    }
  }

  /**
   * Reserves a slot, shared when Redis is usable, else local. `place()` gives the local time to start
   * at (`slot`) and the latest start that keeps the spacing (`deadline`; local slots have none:
   * lastSent keeps this process's own requests apart), as well as this process knows them now.
   * `givenUp`: the caller's local slot, given up for a shared one (LocalSlots.giveUp); it is kept when
   * Redis fails again, if it still starts by `until` (the caller's bound).
   */
  private async reserve(maxWaitMs: number, givenUp?: LocalSlot, until = Infinity): Promise<Reserved> {
    const fallBack = () => (givenUp ? this.keepLocal(givenUp, until) : this.localSlot(maxWaitMs));
    if (!this.redisUsable()) {
      if (this.client) this.noteRedisFailure('client not ready or reported unusable');
      return fallBack();
    }
    // Only while local slots wait (Redis was unusable): never on the path of a Redis usable all along.
    if (this.local.waiting) this.local.giveUp();
    try {
      const place = await this.reserveShared(maxWaitMs);
      this.noteRedisHealthy();
      return { place, mode: 'redis' };
    } catch (error) {
      // A caller that gave its local slot up is refused like any other when the shared schedule is
      // full for it: starting on the local slot instead would put it beside the fleet's shared
      // starts, the bunching that giving it up prevents (and the public server blocks for).
      if (error instanceof QueueFullError || error instanceof CoolingDownError) throw error;
      this.noteRedisFailure(error);
      return fallBack();
    }
  }

  private localSlot(maxWaitMs: number): Reserved {
    return this.placeLocal(this.reserveLocal(maxWaitMs), false);
  }

  /**
   * A given-up local slot back in use: Redis failed again while its caller queued behind the shared
   * schedule. The slot is still this process's (local.next is past it), so it keeps the process's
   * spacing; it is committed to, not given up again. Refused when it can no longer start within the
   * caller's bound (`until`: the queueing again took longer than what was left).
   */
  private keepLocal(placed: LocalSlot, until: number): Reserved {
    const now = this.now();
    if (Math.max(placed.slot, now) > until) throw new QueueFullError(retryAfterSeconds(Math.max(0, this.local.next - now)));
    return this.placeLocal(placed.slot, true);
  }

  private placeLocal(slot: number, committed: boolean): Reserved {
    const placed = this.local.place(slot, committed);
    return { place: () => placed, mode: 'local', local: placed };
  }

  /**
   * Before a local slot (SLOT_CHECK_LEAD_MS, as before a shared one): if Redis is usable again by then,
   * this caller and every other of this process not yet committed to its local slot give theirs up
   * and queue behind the shared schedule (the slot comes back `lost`). Otherwise the caller commits to
   * its slot. Wakes early when another caller or a new one found Redis usable first.
   */
  private async beforeLocalSlot(placed: LocalSlot, signal?: AbortSignal): Promise<void> {
    if (placed.committed) return;
    if (this.client === null) return this.local.commit(placed); // no Redis to come back
    if (placed.slot - this.now() > SLOT_CHECK_LEAD_MS) await this.sleepers.sleep(placed.slot - SLOT_CHECK_LEAD_MS, signal, placed.given);
    if (placed.lost === undefined && this.redisUsable()) this.local.giveUp();
    if (placed.lost === undefined) this.local.commit(placed);
  }

  /**
   * Starts a cool-down (after an upstream 429/403): locally at once, and shared through Redis when it
   * can be reached. Never rejects; a longer cool-down already running is kept. Callers sleeping in
   * this process's queue are refused immediately.
   */
  async coolDown(ms: number): Promise<void> {
    const duration = Math.max(1, Math.ceil(ms));
    this.localCoolDownUntil = Math.max(this.localCoolDownUntil, this.now() + duration);
    const error = new CoolingDownError(retryAfterSeconds(this.cooldownRemainingMs()));
    this.sleepers.failAll(error);

    if (!this.shared || !this.redisUsable()) return;
    try {
      await this.shared.coolDown(duration);
    } catch (err) {
      this.noteRedisFailure(err);
    }
  }

  /** Remaining cool-down as this process knows it (its own, or one seen in Redis). */
  cooldownRemainingMs(): number {
    return Math.max(0, this.localCoolDownUntil - this.now());
  }

  /** One bounded Redis call: through the app's guard when given, else with the plain op timeout. */
  private redisCall<T>(op: string, call: () => Promise<T>): Promise<T> {
    return this.options.guard ? this.options.guard(op, call) : withTimeout(call(), this.options.opTimeoutMs, `redis ${op}`);
  }

  private redisUsable(): boolean {
    return this.client !== null && this.client.isReady && this.isRedisUsable();
  }

  /**
   * Reserves the next shared slot and maps it onto the local clock. Bookkeeping happens in the same
   * turn as the reply so that concurrent callers of this process see each other's slots.
   */
  private async reserveShared(maxWaitMs: number): Promise<() => PlacedSlot> {
    const ownDelayUs = Math.max(0, Math.ceil((this.local.onlyNext - this.now()) * 1000));
    let sentAt = this.now();
    const reply = await (this.shared as SharedSchedule).acquire(
      this.window.slotIntervalUs,
      Math.floor(maxWaitMs * 1000),
      ownDelayUs,
      Math.ceil(this.horizonMs * 1000),
      () => (sentAt = this.now()),
    );
    const arrivedAt = this.now();
    if (reply.kind === 'cooling') {
      this.localCoolDownUntil = Math.max(this.localCoolDownUntil, arrivedAt + reply.pttlMs);
      throw new CoolingDownError(retryAfterSeconds(reply.pttlMs));
    }
    const { amountUs: amount, redisNowUs, epoch } = reply;
    const ms = amount / 1000;
    if (reply.kind === 'full') throw new QueueFullError(retryAfterSeconds(ms));

    const [earliest, latest] = this.clock.locate((redisNowUs + amount) / 1000, redisNowUs / 1000, ms, sentAt, arrivedAt);
    // For a fall-back to local slots only. Redis spaces its own slots: asking it for our next one no
    // sooner than this would add each round trip's uncertainty to every interval (30/s delivered for
    // 50 asked on a loaded machine) and break the exact chain of slots that followedByOwn relies on.
    this.local.next = Math.max(this.local.next, earliest + this.localIntervalMs);
    // Starting at `latest` is never early; starting by earliest + the allowed lateness is never late
    // enough to come within the window's closest spacing of the next slot. A window wider than that
    // (clocks known too loosely, a slow round trip) has no safe start: the slot is given up and the
    // caller queues again. Starting late "best effort" instead put starts of two instances 950 ms
    // apart in the pacing e2e test.
    // While the caller sleeps, later round trips may tell the clocks' offset more closely (the
    // cool-down re-check before a slot takes a sample): placing the slot again with that knowledge,
    // within this round trip's bounds, only narrows the window, so that a caller whose own reply came
    // slowly (a loaded machine) can still use its slot.
    const redisSlotMs = (redisNowUs + amount) / 1000;
    // Shared slots are whole µs: the one right after ours is exactly one interval later, or further.
    const slotUs = redisNowUs + amount;
    this.pendingSlots.add(slotUs);
    const release = () => {
      if (this.pendingSlots.delete(slotUs)) this.passTurn();
    };
    // In the allowance band a caller may also start later than its window when the next shared slot
    // is this process's own and not yet used: that one waits for our send (localGapUs) and keeps its
    // own deadline towards whatever instance follows, so being late costs nobody else any spacing.
    // A loaded machine's timers fire 2-20 ms late; without this most slots at 50/s were given up.
    const followedByOwn = () => this.window.mode === 'allowance' && this.pendingSlots.has(slotUs + this.window.slotIntervalUs);
    let lost: SlotLoss | undefined;
    const lose = (why: SlotLoss) => (lost ??= why);
    return () => {
      const [low, high] = this.clock.narrow(redisSlotMs, earliest, latest, this.now());
      return { slot: high, deadline: followedByOwn() ? Infinity : low + this.lateMs, release, order: slotUs, epoch, lose, lost };
    };
  }

  /** The same next-slot scheduler, per process; resolves the slot on the local clock. */
  private reserveLocal(maxWaitMs: number): number {
    return this.local.reserve(this.now(), maxWaitMs);
  }

  /**
   * Sleeps until `slot` (local clock). Before a shared slot it re-reads the shared cool-down in the
   * background, never delaying the start for it. On waking it also keeps this process's own requests
   * at least the window's local gap apart, counted from when the one before was really sent (waiting
   * for that when it has not been yet), whatever timer, event-loop or connection jitter did.
   */
  private async sleepUntilSlot(place: () => PlacedSlot, sharedRecheck: boolean, signal?: AbortSignal): Promise<void> {
    if (sharedRecheck && place().slot - this.now() > SLOT_CHECK_LEAD_MS) {
      await this.sleepers.sleep(place().slot - SLOT_CHECK_LEAD_MS, signal);
      this.recheckShared(place());
    }
    const order = place().order;
    for (;;) {
      await this.sleepers.sleep(Math.max(place().slot, this.lastSent + this.localGapMs), signal);
      this.throwIfCoolingDownLocally();
      if (this.unsent !== null && this.localGapMs > 0) {
        await this.untilSent(this.unsent, signal);
        continue;
      }
      // Callers woken together (the send they waited for came) go in slot order: one that kept
      // losing the race to later slots was seen starting 2 s after its slot, and giving it up.
      if (order !== undefined && this.localGapMs > 0 && this.earliestPending() < order) {
        await this.nextTurn();
        continue;
      }
      if (this.now() >= this.lastSent + this.localGapMs) return;
    }
  }

  /** Settles when one of this process's pending shared slots starts or is given up. */
  private nextTurn(): Promise<void> {
    return (this.turn ??= new Promise<void>((resolve) => (this.endTurn = resolve)));
  }

  private passTurn(): void {
    const end = this.endTurn;
    this.turn = this.endTurn = undefined;
    end?.();
  }

  private earliestPending(): number {
    let first = Infinity;
    for (const slot of this.pendingSlots) if (slot < first) first = slot;
    return first;
  }

  /** Books a start; returns its sent() (see PacerGrant). `sharedSlot`: the start's shared slot, when it had one. */
  private started(startAt: number, signalsSend: boolean, sharedSlot?: number): (written?: boolean) => void {
    this.lastSent = Math.max(this.lastSent, startAt);
    if (!signalsSend || !this.window.waitsForSend) return () => undefined;
    let settle!: () => void;
    const unsent = new Promise<void>((resolve) => (settle = resolve));
    this.unsent = unsent;
    let done = false;
    return (written = true) => {
      if (done) return;
      done = true;
      const sentAt = this.now();
      this.lastSent = Math.max(this.lastSent, sentAt);
      if (this.unsent === unsent) this.unsent = null;
      settle();
      if (written && sharedSlot !== undefined && this.holdsFleet && sentAt - sharedSlot > this.window.guardUs / 2000) this.holdFleet();
    };
  }

  /**
   * Strict pacing (the public server's kind of budget) spaces the starts of the whole fleet; the
   * upstream sees the sends. A request that left late (a new TLS connection takes a few round trips
   * before anything is written) could reach the upstream less than an interval before another
   * instance's next one, which started on time on a warm connection. The next slot is already a guard
   * later, so only a send later than that needs telling: it holds the fleet (a flag whose time to live
   * is the interval). A slot handed out while it runs comes after it (ACQUIRE_SCRIPT); a slot handed
   * out before is voided by the check before it (recheckShared) and queues again. Best effort, and
   * never on the start's critical path: a hold set after that check (a send later than the next
   * slot less SLOT_CHECK_LEAD_MS) is not seen, and a request that never left sets none.
   */
  private get holdsFleet(): boolean {
    return this.window.mode === 'strict' && this.client !== null;
  }

  private holdFleet(): void {
    if (!this.shared || !this.redisUsable()) return;
    this.shared.hold(Math.ceil(this.options.minIntervalMs)).catch((error: unknown) => this.noteRedisFailure(error));
  }

  /**
   * Voids `placed` when Redis's schedule (its epoch now) is not the one it came from, or when the
   * fleet's send hold (`holdMs` from now) runs past it.
   */
  private checkSlot(placed: PlacedSlot, epoch: string | null, holdMs: number): void {
    if (placed.epoch === undefined) return;
    if (epoch !== placed.epoch) placed.lose?.('schedule');
    else if (this.holdsFleet && holdMs > 0 && this.now() + holdMs > placed.slot) placed.lose?.('hold');
  }

  /** Waits for a granted request to be sent, at most SEND_WAIT_CAP_MS (then it counts as sent now). */
  private untilSent(unsent: Promise<void>, signal?: AbortSignal): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      if (signal?.aborted) return reject(toError(signal.reason));
      const finish = () => {
        clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
      };
      const onAbort = () => {
        finish();
        reject(toError(signal?.reason));
      };
      const timer = setTimeout(() => {
        if (this.unsent === unsent) {
          this.unsent = null;
          this.lastSent = Math.max(this.lastSent, this.now());
        }
        finish();
        resolve();
      }, SEND_WAIT_CAP_MS);
      signal?.addEventListener('abort', onAbort, { once: true });
      void unsent.then(() => {
        finish();
        resolve();
      });
    });
  }

  /**
   * Before a shared slot, in the background (never delaying the start), one round trip: the cool-down
   * another instance may have started, a clock sample, a send hold that runs past the slot, and whether
   * the slot's schedule still exists in Redis.
   */
  private recheckShared(placed: PlacedSlot): void {
    if (!this.shared || !this.redisUsable()) return;
    let sentAt = this.now();
    this.shared.slotCheck(() => (sentAt = this.now())).then(
      ({ redisMs, coolDownMs, holdMs, epoch }) => {
        // A clock reading rides along: see reserveShared's place().
        this.clock.sample(redisMs, sentAt, this.now());
        if (coolDownMs > 0) this.localCoolDownUntil = Math.max(this.localCoolDownUntil, this.now() + coolDownMs);
        this.checkSlot(placed, epoch, holdMs);
      },
      () => undefined, // fail open: the local cool-down still applies, and the slot stands
    );
  }

  private throwIfCoolingDownLocally(): void {
    const remaining = this.cooldownRemainingMs();
    if (remaining > 0) throw new CoolingDownError(retryAfterSeconds(remaining));
  }

  private noteRedisFailure(error: unknown): void {
    if (this.degraded) return;
    this.degraded = refusedByRedis(error) ? 'quiet' : 'logged';
    if (this.degraded === 'quiet') return;
    this.logger.warn(
      `Redis unavailable for upstream pacing (${error instanceof Error ? error.message : String(error)}); pacing per process at ${formatRate(1000 / this.localIntervalMs)}/s until it returns`,
    );
  }

  private noteMissedSlot(lateMs: number): void {
    if (this.missedSlots++ % 100 !== 0) return;
    this.logger.warn(
      `Upstream slot missed by ${lateMs.toFixed(1)} ms (event-loop lag or a late Redis reply beyond its window); re-queued, ${this.missedSlots} so far`,
    );
  }

  private noteLostSchedule(epoch: string | undefined): void {
    if (epoch === this.lostEpoch) return;
    this.lostEpoch = epoch;
    this.logger.warn('Upstream pacing schedule lost in Redis (a restart, FLUSHALL or eviction): slots handed out before it are queued again');
  }

  private noteRedisHealthy(): void {
    if (!this.degraded) return;
    const logged = this.degraded === 'logged';
    this.degraded = false;
    if (logged) this.logger.log('Redis is back: upstream pacing is global again');
  }
}

/** A rate as a log reads it: 0.33, 5, 952.4. */
function formatRate(perSecond: number): string {
  return String(Number(perSecond.toPrecision(perSecond < 1 ? 2 : 4)));
}
