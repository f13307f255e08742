import { Inject, Injectable } from '@nestjs/common';
import { HealthIndicatorResult, HealthIndicatorService } from '@nestjs/terminus';
import { nominatimConfig, NominatimConfig } from '../config/configuration';
import { UpstreamStatus } from '../places/nominatim/upstream-status';

/**
 * Upstream reachability as the last real Nominatim call showed it. It never sends a request itself:
 * Nominatim's usage policy counts every request, and a probe every few seconds from every instance
 * would spend the shared 1 request/second budget on nothing. Failing or cooling down is `degraded`:
 * cached (and stale) answers are still served.
 */
@Injectable()
export class UpstreamHealthIndicator {
  private readonly upstream: string;

  constructor(
    private readonly health: HealthIndicatorService,
    private readonly status: UpstreamStatus,
    @Inject(nominatimConfig.KEY) config: NominatimConfig,
  ) {
    const url = new URL(config.baseUrl);
    // Credentials in NOMINATIM_URL (a private server behind basic auth) stay out of the answer.
    this.upstream = `${url.origin}${url.pathname.replace(/\/+$/, '')}`;
  }

  check(key = 'upstream', now = Date.now()): HealthIndicatorResult {
    const s = this.status.snapshot();
    const data = {
      state: s.state,
      url: this.upstream,
      lastCall:
        s.lastCall === null
          ? null
          : {
              endpoint: s.lastCall.endpoint,
              status: s.lastCall.status,
              durationMs: s.lastCall.durationMs,
              at: new Date(s.lastCall.at).toISOString(),
              ageSeconds: ageSeconds(s.lastCall.at, now),
            },
      lastSuccessAgeSeconds: s.lastSuccessAt === null ? null : ageSeconds(s.lastSuccessAt, now),
      consecutiveFailures: s.consecutiveFailures,
      coolDownRemainingSeconds: Math.ceil(s.coolDownRemainingMs / 1000),
      queued: s.queued,
    };
    const session = this.health.check(key);
    return s.state === 'failing' || s.state === 'cooling_down' ? session.degraded(data) : session.up(data);
  }
}

function ageSeconds(at: number, now: number): number {
  return Math.max(0, Math.round((now - at) / 100) / 10);
}
