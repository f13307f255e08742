/**
 * Nominatim never redirects; something in front of it does (http → https, a moved host). A redirect is
 * an upstream failure and is not followed: NOMINATIM_URL is the operator's choice, and a redirect could
 * point anywhere. No request upstream is conditional, so a 304 is just another of these.
 */
export const isRedirect = (status: number): boolean => status >= 300 && status < 400;

/** Longest target the log repeats: the Location is the upstream's, of any length. */
const MAX_TARGET_CHARS = 200;

/**
 * For the operator's log: where an upstream redirect points and, when it keeps the path asked for, the
 * NOMINATIM_URL to use instead. The target loses its query (the client's question, NOMINATIM_EMAIL) and
 * any credentials: only origin and path are told.
 */
export function redirectAdvice(location: string | undefined, requestUrl: string, upstreamPath: string): string {
  if (location === undefined || location.trim() === '') return 'a redirect without a Location, not followed; check NOMINATIM_URL';
  let target: URL;
  try {
    target = new URL(location, requestUrl);
  } catch {
    return 'a redirect to an invalid Location, not followed; check NOMINATIM_URL';
  }
  if (target.protocol !== 'http:' && target.protocol !== 'https:') {
    return `a redirect to a ${target.protocol} URL, not followed; check NOMINATIM_URL`;
  }
  const where = `${target.origin}${target.pathname}`.slice(0, MAX_TARGET_CHARS);
  if (!target.pathname.endsWith(upstreamPath)) return `a redirect to ${where}, not followed; check NOMINATIM_URL`;
  const base = `${target.origin}${target.pathname.slice(0, -upstreamPath.length)}`.slice(0, MAX_TARGET_CHARS);
  return `a redirect to ${where}, not followed; set NOMINATIM_URL to ${base}`;
}
