import { UpstreamConfig } from '../../config/upstreams';
import { UpstreamPacer } from './upstream-pacer';
import { UpstreamStatus } from './upstream-status';

/** Provider token: the upstreams (UpstreamTarget[]) in NOMINATIM_URL's order of preference. */
export const UPSTREAMS = 'UPSTREAMS';

/** One upstream Nominatim: where it is, its own fleet-wide pacer, and what its last calls showed. */
export interface UpstreamTarget extends UpstreamConfig {
  pacer: UpstreamPacer;
  status: UpstreamStatus;
  /** next 429/403 cool-down when the upstream gives no Retry-After (doubles per episode: see coolingSince) */
  backoffMs: number;
  /**
   * performance.now() when this process saw the answer that started the cool-down (429/403, or 503
   * with Retry-After), until an answer to a request sent after it is accepted; undefined without one.
   * Logged once, at its start and its end; the misses it turns away do not demote again.
   */
  coolingSince: number | undefined;
}

/**
 * The Redis namespace of an upstream's pacer: with one upstream the plain `places:v1:pacer:…`,
 * the one a single-upstream fleet has always shared, so a fleet can be upgraded instance by instance; with several, one per host.
 */
export function pacerKeyPrefix(keyPrefix: string, upstreams: readonly UpstreamConfig[], i: number): string {
  return upstreams.length === 1 ? keyPrefix : `${keyPrefix}upstream:${upstreams[i].host}:`;
}
