import { EnvReader, withoutCredentials } from './env-parsers';

export interface UpstreamConfig {
  /** without a trailing slash */
  baseUrl: string;
  /** host[:port], the upstream's label in metrics, /health and logs (never credentials) */
  host: string;
  maxRps: number;
}

const MAX_UPSTREAMS = 8;

/**
 * NOMINATIM_URL: one URL, or a comma-separated list in order of preference. NOMINATIM_MAX_RPS: one
 * value for all, or one per URL in the same order (`50,1`: own instance at 50/s, the public server at
 * 1/s). Problems are recorded on `r` like any other variable's.
 */
export function readUpstreams(r: EnvReader, fallbackUrl: string): UpstreamConfig[] {
  const urls = (r.raw('NOMINATIM_URL') ?? fallbackUrl).split(',').map((u) => u.trim());
  const rpsValues = (r.raw('NOMINATIM_MAX_RPS') ?? '1').split(',').map((v) => v.trim());
  if (urls.length > MAX_UPSTREAMS || urls.some((u) => u === '')) {
    r.problem(`NOMINATIM_URL must be one URL or a comma-separated list of at most ${MAX_UPSTREAMS} (got "${withoutCredentials(r.raw('NOMINATIM_URL') ?? '')}")`);
    return [{ baseUrl: fallbackUrl, host: new URL(fallbackUrl).host, maxRps: 1 }];
  }
  if (rpsValues.length !== 1 && rpsValues.length !== urls.length) {
    r.problem(`NOMINATIM_MAX_RPS must be one number or one per NOMINATIM_URL entry (${urls.length}) (got "${r.raw('NOMINATIM_MAX_RPS')}")`);
  }
  const seen = new Set<string>();
  return urls.map((value, i) => {
    const baseUrl = httpUrl(r, value, fallbackUrl);
    const host = new URL(baseUrl).host;
    if (seen.has(host)) r.problem(`NOMINATIM_URL lists ${host} twice`);
    seen.add(host);
    const rps = rpsValues.length === urls.length ? rpsValues[i] : rpsValues[0];
    return { baseUrl, host, maxRps: maxRps(r, rps) };
  });
}

function httpUrl(r: EnvReader, value: string, fallback: string): string {
  try {
    const url = new URL(value);
    if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new Error('protocol');
    return value.replace(/\/+$/, '');
  } catch {
    r.problem(`NOMINATIM_URL must be an http:// or https:// URL (got "${withoutCredentials(value)}")`);
    return fallback;
  }
}

function maxRps(r: EnvReader, value: string): number {
  const n = Number(value);
  if (!/^\d+(\.\d+)?$/.test(value) || n < 0.01 || n > 1000) {
    r.problem(`NOMINATIM_MAX_RPS must be a number from 0.01 to 1000 (got "${value}")`);
    return 1;
  }
  return n;
}
