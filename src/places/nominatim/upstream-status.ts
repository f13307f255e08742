import { NominatimEndpoint } from './nominatim-request';
import { UpstreamPacer } from './upstream-pacer';

/** What one real upstream call ended with: the HTTP status, or no answer at all. */
export type UpstreamResult = number | 'timeout' | 'error';

export interface UpstreamCall {
  endpoint: NominatimEndpoint;
  status: UpstreamResult;
  durationMs: number;
  /** Date.now() when the answer (or the failure) came */
  at: number;
}

export type UpstreamState = 'unknown' | 'ok' | 'failing' | 'cooling_down';

export interface UpstreamSnapshot {
  state: UpstreamState;
  lastCall: UpstreamCall | null;
  /** Date.now() of the last call Nominatim answered without a redirect, a server error or a refusal */
  lastSuccessAt: number | null;
  /** calls in a row that failed (timeout, network error, 3xx, 5xx, 429/403); 0 after a success */
  consecutiveFailures: number;
  coolDownRemainingMs: number;
  /** misses sleeping for their upstream slot in this process */
  queued: number;
}

/**
 * A call that shows the upstream working: anything but a redirect, a server error or a refusal (other
 * 4xx answers are the client's fault).
 */
export function isUpstreamSuccess(status: UpstreamResult): boolean {
  if (typeof status !== 'number') return false;
  return status < 300 || (status >= 400 && status < 500 && status !== 429 && status !== 403);
}

/**
 * Remembers what the last real call to Nominatim showed, so health probes can report upstream
 * reachability without sending anything upstream (the usage policy counts every request).
 * Provided by PlacesModule with the pacer, whose cool-down it reports.
 */
export class UpstreamStatus {
  private last: UpstreamCall | null = null;
  private lastSuccessAt: number | null = null;
  private failures = 0;

  constructor(private readonly pacer: Pick<UpstreamPacer, 'cooldownRemainingMs' | 'waiting'>) {}

  record(endpoint: NominatimEndpoint, status: UpstreamResult, durationMs: number, at = Date.now()): void {
    this.last = { endpoint, status, durationMs: Math.round(durationMs), at };
    if (isUpstreamSuccess(status)) {
      this.lastSuccessAt = at;
      this.failures = 0;
    } else {
      this.failures++;
    }
  }

  snapshot(): UpstreamSnapshot {
    const coolDownRemainingMs = this.pacer.cooldownRemainingMs();
    let state: UpstreamState;
    if (coolDownRemainingMs > 0) state = 'cooling_down';
    else if (this.last === null) state = 'unknown';
    else state = this.failures > 0 ? 'failing' : 'ok';
    return {
      state,
      lastCall: this.last,
      lastSuccessAt: this.lastSuccessAt,
      consecutiveFailures: this.failures,
      coolDownRemainingMs,
      queued: this.pacer.waiting,
    };
  }
}
