import { setMaxListeners } from 'node:events';

/** The reason a demotion signal aborts with: the upstream a caller waits for was just demoted. */
export class UpstreamDemotedError extends Error {
  constructor() {
    super('upstream demoted');
    this.name = 'UpstreamDemotedError';
  }
}

/**
 * Which of several upstreams to ask, in NOMINATIM_URL's order of preference. One that fails (refused,
 * timed out, 5xx, 429/403) is demoted: passed over until its back-off ends, then tried again first.
 * The back-off is the upstream's Retry-After when it sent one, else 1 s doubling with each failure in
 * a row; either way at most `maxBackoffMs` (UPSTREAM_BACKOFF_MAX_SECONDS). Pure and in-process: a 429
 * or 403 is also shared with the fleet through that upstream's pacer cool-down.
 *
 * One outage counts once: a failure of an attempt that began before the upstream's last demotion (the
 * misses already in flight when it began to time out) is the failure already counted, not one more
 * in a row: it does not double the back-off (see demote); nor does its success undo the demotion
 * (see succeeded).
 */
export class UpstreamPreference {
  private readonly demotedUntil: number[];
  private readonly failures: number[];
  private readonly demotions: (AbortController | undefined)[];

  constructor(
    readonly count: number,
    private readonly maxBackoffMs: number,
    private readonly firstBackoffMs = 1000,
  ) {
    this.demotedUntil = new Array<number>(count).fill(0);
    this.failures = new Array<number>(count).fill(0);
    this.demotions = new Array<AbortController | undefined>(count).fill(undefined);
  }

  /**
   * Aborts (with UpstreamDemotedError) when upstream `i` is next demoted: a miss waiting for its slot
   * there gives the slot up and moves on, rather than be sent to an upstream known to fail.
   */
  demotion(i: number): AbortSignal {
    let controller = this.demotions[i];
    if (controller === undefined) {
      controller = this.demotions[i] = new AbortController();
      // One listener per miss waiting for this upstream's slot: hundreds in a full queue are expected.
      setMaxListeners(0, controller.signal);
    }
    return controller.signal;
  }

  /** The upstreams to try now, best first: every one not demoted, in order of preference. */
  order(now: number): number[] {
    const out: number[] = [];
    for (let i = 0; i < this.count; i++) if (this.demotedUntil[i] <= now) out.push(i);
    return out;
  }

  /**
   * Demotes upstream `i` after a failure; returns the back-off in ms. `since`: the demotion signal the
   * failed attempt began with (demotion(i)). When it has aborted, the upstream was demoted since: this
   * failure belongs to the outage already counted, and only a longer Retry-After it brought extends
   * the demotion; returns undefined then (nothing new to report).
   */
  demote(i: number, now: number, retryAfterMs?: number, since?: AbortSignal): number | undefined {
    const given = retryAfterMs !== undefined && retryAfterMs > 0 ? Math.min(this.maxBackoffMs, retryAfterMs) : undefined;
    if (since?.aborted) {
      if (given !== undefined) this.demotedUntil[i] = Math.max(this.demotedUntil[i], now + given);
      return undefined;
    }
    this.failures[i]++;
    const ms = given ?? Math.min(this.maxBackoffMs, this.firstBackoffMs * 2 ** Math.min(30, this.failures[i] - 1));
    this.demotedUntil[i] = Math.max(this.demotedUntil[i], now + ms);
    const waiting = this.demotions[i];
    this.demotions[i] = undefined;
    waiting?.abort(new UpstreamDemotedError());
    return ms;
  }

  /**
   * Upstream `i` answered. `since`: the demotion signal the attempt began with; when it has aborted,
   * the upstream was demoted after the request was sent, and that newer failure stands.
   */
  succeeded(i: number, since?: AbortSignal): void {
    if (since?.aborted) return;
    this.failures[i] = 0;
    this.demotedUntil[i] = 0;
  }

  /** ms until upstream `i` may be asked again (0 when it may be now). */
  remainingMs(i: number, now: number): number {
    return Math.max(0, this.demotedUntil[i] - now);
  }

  /** ms until the first demoted upstream may be asked again (0 when one may be now). */
  soonestMs(now: number): number {
    let soonest = Infinity;
    for (let i = 0; i < this.count; i++) soonest = Math.min(soonest, this.remainingMs(i, now));
    return soonest === Infinity ? 0 : soonest;
  }
}

/** Retry-After as ms (delta-seconds or an HTTP date), or undefined when absent or unusable. */
export function retryAfterMs(header: string | undefined, now = Date.now()): number | undefined {
  if (header === undefined) return undefined;
  const v = header.trim();
  const ms = /^\d+$/.test(v) ? Number(v) * 1000 : Date.parse(v) - now;
  return Number.isFinite(ms) && ms > 0 ? ms : undefined;
}
