/**
 * What one call says about the upstream that was asked. Decided here, once, for everything that acts
 * on it: the error the caller gets and whether the fleet cools down (NominatimClient), whether
 * /health/upstream reads `ok` or `failing` (UpstreamStatus), and whether a failover demotes the
 * upstream or stops at its answer (NominatimClient.fetchWithFailover, UpstreamPreference).
 *
 * - `answered`: Nominatim's own answer. A 200, or one of its 4xx (the question was at fault, not the
 *   upstream), either in the shape Nominatim sends it (upstream-body.ts). An answer cut off at
 *   UPSTREAM_MAX_BYTES counts too: the upstream works, the answer is too big for this gateway, and
 *   another upstream would send the same one.
 * - `refused`: 429 or 403, the usage policy: nothing more is sent to it for a while, fleet-wide (a
 *   block page in HTML too).
 * - `failed`: a redirect or a server error (something in front of Nominatim, or Nominatim itself, is
 *   broken), no answer in time, no connection, or `invalid`: a 200 that is not in the format asked
 *   for, or a 4xx that is not Nominatim's error (a web server's HTML 404 for a wrong path in
 *   NOMINATIM_URL, a proxy's 407). Any other status too: Nominatim's successes are all 200, so a 204 or 206 comes from something in front
 *   of it and is no answer to pass on (nor to serve instead of a stale copy); a 101 (a connection
 *   upgraded, see upstream-transport.ts) alike.
 */
export type UpstreamVerdict = 'answered' | 'refused' | 'failed';

/** How one upstream call ended: the HTTP status, or what happened instead of a usable status. */
export type UpstreamResult = number | 'timeout' | 'error' | 'invalid' | 'too_large';

export function verdictOf(result: UpstreamResult): UpstreamVerdict {
  switch (result) {
    case 'too_large':
      return 'answered';
    case 'timeout':
    case 'error':
    case 'invalid':
      return 'failed';
  }
  if (result === 429 || result === 403) return 'refused';
  return result === 200 || (result >= 400 && result < 500) ? 'answered' : 'failed';
}
