import { Inject, Injectable } from '@nestjs/common';
import { HealthIndicatorResult, HealthIndicatorService } from '@nestjs/terminus';
import { nominatimConfig, NominatimConfig } from '../config/configuration';
import { UpstreamSnapshot } from '../places/nominatim/upstream-status';
import { UpstreamTarget, UPSTREAMS } from '../places/nominatim/upstream-target';

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
    @Inject(nominatimConfig.KEY) config: NominatimConfig,
    @Inject(UPSTREAMS) private readonly targets: UpstreamTarget[],
  ) {
    this.upstream = publicUrl(config.baseUrl);
  }

  /**
   * The preferred upstream at the top level (as with a single one); with several, `upstreams` lists each
   * (host, url and the same fields). Only the preferred one decides `degraded`: while it works, misses
   * go to it, and a fallback is asked only when it fails. A fallback's last call may be hours old (it
   * is not asked while the preferred one works), so its `failing` shows in its own entry only; were
   * the preferred one failing too, the whole would be `degraded` for that already.
   */
  check(key = 'upstream', now = Date.now()): HealthIndicatorResult {
    const s = this.targets[0].status.snapshot();
    const data: Record<string, unknown> = describe(s, this.upstream, now);
    if (this.targets.length > 1) {
      data.upstreams = this.targets.map((t) => ({ host: t.host, ...describe(t.status.snapshot(), publicUrl(t.baseUrl), now) }));
    }
    const session = this.health.check(key);
    return s.state === 'failing' || s.state === 'cooling_down' ? session.degraded(data) : session.up(data);
  }
}

/** Credentials in NOMINATIM_URL (a private server behind basic auth) stay out of the answer. */
function publicUrl(baseUrl: string): string {
  const url = new URL(baseUrl);
  return `${url.origin}${url.pathname.replace(/\/+$/, '')}`;
}

function describe(s: UpstreamSnapshot, url: string, now: number) {
  return {
    state: s.state,
    url,
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
}

function ageSeconds(at: number, now: number): number {
  return Math.max(0, Math.round((now - at) / 100) / 10);
}
