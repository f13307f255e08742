import { NominatimEndpoint } from './nominatim-request';
import { UpstreamPacer } from './upstream-pacer';
import { UpstreamResult, verdictOf } from './upstream-verdict';

interface UpstreamCall {
  endpoint: NominatimEndpoint;
  status: UpstreamResult;
  durationMs: number;
  /** Date.now() when the answer (or the failure) came */
  at: number;
}

type UpstreamState = 'unknown' | 'ok' | 'failing' | 'cooling_down';

export interface UpstreamSnapshot {
  state: UpstreamState;
  lastCall: UpstreamCall | null;
  /** Date.now() of the last call whose verdict was `answered` (see upstream-verdict.ts) */
  lastSuccessAt: number | null;
  /** calls in a row that were refused or failed; 0 after an answered one */
  consecutiveFailures: number;
  coolDownRemainingMs: number;
  /** misses sleeping for their upstream slot in this process */
  queued: number;
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
    if (verdictOf(status) === 'answered') {
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
