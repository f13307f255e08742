import { QueueFullError, retryAfterSeconds } from './pacer-errors';

/** Why a slot is void (its caller queues again): its schedule was lost in Redis, a late send holds the fleet past it, or (a local slot) Redis is usable again. */
export type SlotLoss = 'schedule' | 'hold' | 'redis-back';

/** A slot on the local clock: start no sooner than `slot`, no later than `deadline`. */
export interface PlacedSlot {
  slot: number;
  deadline: number;
  /** Forgets the slot as one of this process's pending ones (once the caller starts or gives it up). */
  release?: () => void;
  /** The shared slot (Redis µs): this process's callers start in this order. */
  order?: number;
  /** The schedule the shared slot came from (see ACQUIRE_SCRIPT), and how it is voided. */
  epoch?: string;
  lose?: (why: SlotLoss) => void;
  /** Why the slot is void (queue again). */
  lost?: SlotLoss;
}

/**
 * A slot a process gave itself without Redis. Until its caller commits to it (just before it, Redis
 * still unusable) it is given up as soon as Redis is usable again (LocalSlots.giveUp).
 */
export interface LocalSlot extends PlacedSlot {
  committed: boolean;
  /** Settles when the slot is given up: its caller wakes to queue again at once. */
  given: Promise<void>;
}

/**
 * The slots one process gives itself while Redis is unusable: the shared schedule's strict next-slot
 * scheduler, in-process, `intervalMs` apart (the process's share of the budget), and the callers still
 * waiting on them. Times are on the local clock (ms).
 */
export class LocalSlots {
  /** Earliest start this process may use next (slots from Redis included: UpstreamPacer moves it). */
  next = -Infinity;
  /** The end of the local slots still to be used: shared slots are kept clear of them. */
  onlyNext = -Infinity;
  /** The same, of the local slots committed to (or used). */
  private committedEnd = -Infinity;
  /** Slots whose callers have not started yet. */
  private readonly pending = new Set<LocalSlot>();

  constructor(private readonly intervalMs: number) {}

  /** Whether callers wait on local slots (never while Redis is usable all along). */
  get waiting(): boolean {
    return this.pending.size > 0;
  }

  /** The next slot from `now`; QueueFullError when it is further than `maxWaitMs`. */
  reserve(now: number, maxWaitMs: number): number {
    const slot = Math.max(now, this.next);
    const wait = slot - now;
    if (wait > maxWaitMs) throw new QueueFullError(retryAfterSeconds(wait));
    this.next = slot + this.intervalMs;
    this.onlyNext = this.next;
    return slot;
  }

  /** `slot` as a caller's pending slot; `committed`: it will be used whatever Redis does. */
  place(slot: number, committed: boolean): LocalSlot {
    let give!: () => void;
    const placed: LocalSlot = {
      slot,
      deadline: Infinity,
      committed: false,
      given: new Promise<void>((resolve) => (give = resolve)),
      release: () => this.pending.delete(placed),
      lose: (why) => {
        placed.lost ??= why;
        give();
      },
    };
    this.pending.add(placed);
    if (committed) this.commit(placed);
    return placed;
  }

  commit(placed: LocalSlot): void {
    placed.committed = true;
    this.committedEnd = Math.max(this.committedEnd, placed.slot + this.intervalMs);
    this.onlyNext = Math.max(this.onlyNext, this.committedEnd);
  }

  /**
   * Redis is usable again: every pending slot not committed to is given up, its caller woken to queue
   * behind the shared schedule, in slot order (the order they wake in). Started on their local slots,
   * the callers would bunch with the other instances' starts: each instance drained its own slots,
   * unseen by the others (two instances' in step, 0 ms apart, for a whole queue wait after the return).
   * Shared slots are then kept clear only of the local slots still to be used.
   */
  giveUp(): void {
    for (const placed of this.pending) {
      if (placed.committed) continue;
      this.pending.delete(placed);
      placed.lose?.('redis-back');
    }
    this.onlyNext = this.committedEnd;
  }
}
