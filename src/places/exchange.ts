import type { IncomingMessage } from 'node:http';
import { L1Holder } from './cache/l1-cache';
import { CanonicalRequest } from './nominatim/nominatim-request';
import { PlaceRoute } from './place-routes';

/**
 * A question the pipeline has canonicalised, as remembered by request target: its canonical request,
 * the L1 slot of its answer once found (a repeated hit then needs no key lookup) and its log hash.
 */
export interface Question extends L1Holder {
  readonly request: CanonicalRequest;
  qhash?: string;
}

/**
 * One request on its way through the gateway, created once by whichever entry received it (the front
 * door, or Nest's controller) and passed down the pipeline. Whatever a later step, the writer or the
 * request line needs travels here; nothing about a request is kept beside it.
 */
export class Exchange {
  /** the place route of the path; undefined for every other path */
  route?: PlaceRoute;
  /** the canonical question (set by the pipeline's first step when the query is valid) */
  question?: Question;
  /** X-Cache of the answer written, for the request line */
  cache?: string;
  /** per-phase timings of a request that left the hit path (ms since `started`), for the debug line */
  timings?: { lookup?: number; limit?: number; answer?: number };
  private clientId?: string;

  constructor(
    readonly req: IncomingMessage,
    readonly requestId: string,
    /** the request target in origin-form (`/path?query`), which the question's memo is keyed by */
    readonly target: string,
    readonly path: string,
    readonly query: string,
    /** performance.now() when the request arrived */
    readonly started: number,
    private readonly clientOf: (req: IncomingMessage) => string,
  ) {}

  /** The address rate limits count (computed on first use: a hit without limits never needs it). */
  get client(): string {
    return (this.clientId ??= this.clientOf(this.req));
  }

  /** Notes when `phase` ended, relative to the arrival. */
  mark(phase: 'lookup' | 'limit' | 'answer'): void {
    (this.timings ??= {})[phase] = Math.round((performance.now() - this.started) * 100) / 100;
  }
}
