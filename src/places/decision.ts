import { GatewayError } from '../common/gateway.errors';
import { Resolution } from './cache/places-cache.service';
import { ErrorAnswer } from './nominatim/nominatim-request';

/**
 * What the pipeline decided for one request: data, never a write. The answer writer is the one place
 * that turns a decision into a response.
 */
export type Decision =
  /** an answer from the cache or from Nominatim (a hit, a stale copy, a miss, Nominatim's own 4xx) */
  | Resolution
  /** the question is invalid: Nominatim's 400 in the requested format (or /api's JSON 400) */
  | { kind: 'invalid'; error: ErrorAnswer }
  /** the client is over its allowance */
  | { kind: 'limited'; retryAfterSeconds: number }
  /** Nominatim failed (502), timed out (504), or we would not ask it now (503) */
  | { kind: 'failed'; error: GatewayError };
