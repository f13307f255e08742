import { GatewayError } from '../../common/gateway.errors';

/** What the gateway says when Nominatim fails, is too slow, or is not asked now. */
export const upstreamTimeout = (ms: number) =>
  new GatewayError(504, `Nominatim did not answer within ${ms} ms`, 'upstream_timeout');

/** `retryAfterSeconds`: the upstream said when to ask again (a 503's Retry-After), and nothing is sent to it until then. */
export const upstreamFailed = (detail: string, upstreamStatus?: number, retryAfterSeconds?: number) =>
  new GatewayError(502, `Nominatim request failed: ${detail}`, 'upstream_error', retryAfterSeconds === undefined ? undefined : Math.max(1, Math.ceil(retryAfterSeconds)), upstreamStatus);

export const upstreamBusy = (message: string, code: string, retryAfterSeconds: number, upstreamStatus?: number) =>
  new GatewayError(503, message, code, Math.max(1, Math.ceil(retryAfterSeconds)), upstreamStatus);

/** A 200 that is not the format asked for (an HTML error page, a truncated body), or a 4xx that is not Nominatim's error (a web server's or a proxy's page): never stored. */
export const upstreamInvalid = (problem: string) =>
  new GatewayError(502, `Nominatim sent an answer that is not valid: ${problem}`, 'upstream_invalid');

/** An answer past UPSTREAM_MAX_BYTES: its connection is cut as soon as the limit is passed. */
export const upstreamTooLarge = (maxBytes: number) =>
  new GatewayError(502, `Nominatim's answer is larger than ${maxBytes} bytes (UPSTREAM_MAX_BYTES)`, 'upstream_too_large');

/** RFC 9111 5.2.1.7: only-if-cached and nothing usable is stored. */
export const notCached = () =>
  new GatewayError(504, 'Nothing usable is cached for this question (the request said only-if-cached)', 'not_cached');

/*
 * What asking Nominatim came to: it failed, was too slow, refused us (the fleet's cool-down after a 429
 * or 403 is shared, so any instance would be refused alike), or sent an answer we do not keep. Instances
 * waiting for the same question's fill take such an error as their own answer at once (fills.ts).
 * Left out, so that the waiters ask themselves: the asking instance's own state, where nothing was sent
 * and the next instance may do better: its pacing queue was full (upstream_queue_full), or its failover
 * had every upstream passed over (upstream_unavailable: each instance keeps its own preference).
 * Anything not listed (a new code) is left out too: the waiters then ask (the safe default: at worst one more
 * upstream call).
 */
const PASSED_TO_WAITERS: ReadonlySet<string> = new Set([
  'upstream_timeout',
  'upstream_error',
  'upstream_refused',
  'upstream_cooldown',
  'upstream_invalid',
  'upstream_too_large',
]);

/** Whether `e` is what Nominatim made of the question, the same for whichever instance asks now: the fill holder passes it to the instances waiting. */
export const passesToWaiters = (e: GatewayError): boolean => PASSED_TO_WAITERS.has(e.code);
