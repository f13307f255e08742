/**
 * How strictly upstream requests are spaced at a given rate. Pure arithmetic, in microseconds (the
 * unit of the shared slots in Redis: at 1000 requests/s a millisecond is the whole interval).
 *
 * - strict (up to 20/s, the public server's kind of budget): a caller that cannot start within the
 *   guard of its slot gives the slot up and queues again, so two starts, whatever instance made
 *   them, are never closer than the interval asked for.
 * - allowance (above 20/s, up to 100/s): the same, but a caller may also start a little late (5 % of
 *   the interval): at 50/s a 1 ms guard alone is below what a timer and an event loop can meet, and
 *   every late caller would re-queue (33/s delivered for 50 asked). Starts of two instances stay at
 *   least 95 % of the interval apart; those of one process never closer than that either.
 * - timer (above 100/s, a self-hosted upstream): slots are still shared, so the budget holds across
 *   instances on average, but each caller just sleeps until its slot and starts: below 10 ms spacing
 *   is not a policy, and a timer's millisecond granularity would otherwise cap the rate. No guard
 *   either: it only keeps starts apart, which this mode does not promise, and it cost 5 % of the
 *   budget (952 slots/s at 1000).
 */
type PacingMode = 'strict' | 'allowance' | 'timer';

export interface PacingWindow {
  mode: PacingMode;
  /** 1000 / rate in ms, as µs: the spacing asked for */
  minIntervalUs: number;
  /**
   * Added to the spacing of shared slots: jitter between instances (a late Redis reply, event-loop
   * lag, clocks known only within a round trip) cannot squeeze two starts closer than asked.
   */
  guardUs: number;
  /** Spacing of the slots handed out from Redis: interval + guard. */
  slotIntervalUs: number;
  /** How late after its slot a caller may still start; later, it gives the slot up (Infinity: never). */
  lateUs: number;
  /**
   * Least spacing between two requests of one process, measured from the moment the earlier one was
   * written to the socket (0: not enforced). slotIntervalUs − lateUs: a caller late by the whole
   * allowance leaves the next one exactly this much.
   */
  localGapUs: number;
  /** Whether a caller waits until the request before it was really sent (see localGapUs). */
  waitsForSend: boolean;
}

/** Up to this rate a late caller always gives its slot up. */
const STRICT_MAX_RPS = 20;
/** Above this rate spacing is by plain timers. */
const TIMER_MIN_RPS = 100;
const GUARD_SHARE = 0.05;
const GUARD_MAX_US = 50_000;
const LATE_SHARE = 0.05;

/**
 * The window for `maxRps` requests/s. `guardUs` replaces the default guard (5 % of the interval, at
 * most 50 ms); the pacer's tests use wider ones on a loaded machine.
 */
export function pacingWindow(maxRps: number, guardUs?: number): PacingWindow {
  if (!(maxRps > 0) || !Number.isFinite(maxRps)) throw new RangeError(`maxRps must be a positive number, got ${maxRps}`);
  if (guardUs !== undefined && !(guardUs >= 0)) throw new RangeError(`guardUs must be >= 0, got ${guardUs}`);
  const minIntervalUs = 1e6 / maxRps;
  return windowFor(minIntervalUs, guardUs);
}

/** As pacingWindow, from the interval (µs) rather than the rate. */
export function windowFor(minIntervalUs: number, guardUs?: number): PacingWindow {
  if (!(minIntervalUs > 0) || !Number.isFinite(minIntervalUs)) throw new RangeError(`minIntervalUs must be a positive number, got ${minIntervalUs}`);
  const rps = 1e6 / minIntervalUs;
  const mode: PacingMode = rps <= STRICT_MAX_RPS ? 'strict' : rps <= TIMER_MIN_RPS ? 'allowance' : 'timer';
  const guard = Math.round(guardUs ?? (mode === 'timer' ? 0 : Math.min(GUARD_MAX_US, minIntervalUs * GUARD_SHARE)));
  const slotIntervalUs = Math.ceil(minIntervalUs + guard);
  if (mode === 'timer') {
    return { mode, minIntervalUs, guardUs: guard, slotIntervalUs, lateUs: Infinity, localGapUs: 0, waitsForSend: false };
  }
  const lateUs = mode === 'strict' ? guard : guard + Math.round(minIntervalUs * LATE_SHARE);
  return { mode, minIntervalUs, guardUs: guard, slotIntervalUs, lateUs, localGapUs: Math.max(0, slotIntervalUs - lateUs), waitsForSend: true };
}

/** Requests per second the slots allow at most (what an upstream sees while demand exceeds the budget). */
export function slotRate(window: PacingWindow): number {
  return 1e6 / window.slotIntervalUs;
}
