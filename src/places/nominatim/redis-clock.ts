/** How fast a Redis-clock offset sample loses precision (ms per ms): drift of the wall clock Redis reads against our monotonic one; 0.2 % was seen on a loaded VM. */
export const CLOCK_DRIFT_ALLOWANCE = 0.005;

/** Redis clock minus local clock, from the round trip with the best recent precision (NTP-style). */
interface ClockOffset {
  offsetMs: number;
  errorMs: number;
  at: number;
}

/**
 * Where times on Redis's clock lie on this process's monotonic clock, as bounds: the offset measured
 * on the most precise recent round trip, its error growing with age by CLOCK_DRIFT_ALLOWANCE.
 */
export class RedisClock {
  private clock?: ClockOffset;

  /** Keeps a Redis clock reading taken between sentAt and arrivedAt if it is the most precise one now. */
  sample(redisNowMs: number, sentAt: number, arrivedAt: number): ClockOffset {
    const errorMs = (arrivedAt - sentAt) / 2;
    const c = this.clock;
    if (c && errorMs > c.errorMs + (arrivedAt - c.at) * CLOCK_DRIFT_ALLOWANCE) return c;
    return (this.clock = { offsetMs: redisNowMs - (sentAt + arrivedAt) / 2, errorMs, at: arrivedAt });
  }

  /**
   * Where a Redis-clock slot lies on the local clock, as [earliest, latest]. The script ran between
   * sentAt and arrivedAt; the offset between the clocks measured on the best recent round trip
   * (NTP-style) narrows that, since this round trip may have queued behind others or retried.
   */
  locate(redisSlotMs: number, redisNowMs: number, delayMs: number, sentAt: number, arrivedAt: number): [number, number] {
    const roundTrip: [number, number] = [sentAt + delayMs - 0.001, arrivedAt + delayMs]; // Redis's clock is in whole µs
    const errorMs = (arrivedAt - sentAt) / 2;
    const clock = this.sample(redisNowMs, sentAt, arrivedAt);
    const estimate = redisSlotMs - clock.offsetMs;
    const error = clock.errorMs + (arrivedAt - clock.at) * CLOCK_DRIFT_ALLOWANCE;
    const earliest = Math.max(roundTrip[0], estimate - error);
    const latest = Math.min(roundTrip[1], estimate + error);
    if (earliest > latest) {
      // The stored offset no longer fits (a clock step): trust this round trip alone.
      this.clock = { offsetMs: redisNowMs - (sentAt + arrivedAt) / 2, errorMs, at: arrivedAt };
      return roundTrip;
    }
    return [earliest, latest];
  }

  /** [earliest, latest] narrowed by what the clock knows at `now` (never widened). */
  narrow(redisSlotMs: number, earliest: number, latest: number, now: number): [number, number] {
    const clock = this.clock;
    if (clock === undefined) return [earliest, latest];
    const error = clock.errorMs + (now - clock.at) * CLOCK_DRIFT_ALLOWANCE;
    const estimate = redisSlotMs - clock.offsetMs;
    const low = Math.max(earliest, estimate - error);
    const high = Math.min(latest, estimate + error);
    return low <= high ? [low, high] : [earliest, latest];
  }
}
