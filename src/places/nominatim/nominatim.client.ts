import { HttpService } from '@nestjs/axios';
import { Inject, Injectable, Logger } from '@nestjs/common';
import { AxiosError } from 'axios';
import { nominatimConfig, NominatimConfig } from '../../config/configuration';
import { MetricsService } from '../../metrics/metrics.service';
import { GatewayError } from '../../common/gateway.errors';
import { upstreamBusy, upstreamFailed, upstreamInvalid, upstreamTimeout, upstreamTooLarge } from './upstream-errors';
import { CanonicalRequest } from './nominatim-request';
import { upstreamBodyProblem } from './upstream-body';
import { CoolingDownError, QueueFullError } from './pacer-errors';
import { PacerGrant } from './upstream-pacer';
import { retryAfterMs, UpstreamPreference } from './upstream-preference';
import { isRedirect, redirectAdvice } from './upstream-redirect';
import { UpstreamTarget, UPSTREAMS } from './upstream-target';
import { signallingTransport } from './upstream-transport';

export interface UpstreamAnswer {
  status: number;
  contentType: string;
  body: Buffer;
}

/** The preferred upstream's pacer (the only one with a single NOMINATIM_URL). */
export const UPSTREAM_PACER = 'UPSTREAM_PACER';

/** Longest cool-down we accept from a Retry-After header, and our own back-off bounds. */
const MAX_COOLDOWN_MS = 10 * 60_000;
export const FIRST_BACKOFF_MS = 5_000;

/** GatewayError codes after which the next upstream of several is asked (the failing one demoted). */
const DEMOTING = new Set(['upstream_timeout', 'upstream_error', 'upstream_refused', 'upstream_cooldown']);

/**
 * The only code that knows Nominatim: base URLs, User-Agent, e-mail, timeout, pacing and how its
 * refusals look. Every request waits for its slot (the usage policy allows 1 request/second for the
 * whole application); 429/403 start a cool-down during which nothing is sent. With several upstreams
 * (NOMINATIM_URL list), each has its own pacer, and a failing one hands the request to the next.
 */
@Injectable()
export class NominatimClient {
  private readonly logger = new Logger(NominatimClient.name);
  private readonly preference: UpstreamPreference;

  constructor(
    private readonly http: HttpService,
    @Inject(nominatimConfig.KEY) private readonly config: NominatimConfig,
    @Inject(UPSTREAMS) private readonly targets: UpstreamTarget[],
    private readonly metrics: MetricsService,
  ) {
    this.preference = new UpstreamPreference(targets.length, config.backoffMaxMs);
  }

  async fetch(request: CanonicalRequest): Promise<UpstreamAnswer> {
    return this.targets.length === 1 ? this.fetchFrom(this.targets[0], request) : this.fetchWithFailover(request);
  }

  /**
   * Several upstreams: each not demoted, in order of preference, until one answers. Connection refused,
   * timeout, 5xx, 3xx, 429 and 403 demote the upstream (see UpstreamPreference) and move on; a full queue
   * moves on without demoting. Nominatim's own answers (200, 400, 404…) end the search.
   */
  private async fetchWithFailover(request: CanonicalRequest): Promise<UpstreamAnswer> {
    const order = this.preference.order(Date.now());
    if (order.length === 0) {
      throw upstreamBusy('Every upstream is failing; try again later', 'upstream_unavailable', this.preference.soonestMs(Date.now()) / 1000);
    }
    let last: GatewayError | undefined;
    for (const i of order) {
      const target = this.targets[i];
      target.lastRetryAfterMs = undefined;
      try {
        const answer = await this.fetchFrom(target, request);
        this.preference.succeeded(i);
        return answer;
      } catch (e) {
        if (!(e instanceof GatewayError)) throw e;
        last = e;
        if (!DEMOTING.has(e.code)) continue;
        const hinted = target.lastRetryAfterMs ?? (e.code === 'upstream_cooldown' ? (e.retryAfterSeconds ?? 0) * 1000 : undefined);
        const ms = this.preference.demote(i, Date.now(), hinted);
        this.logger.warn(`Upstream ${target.host} failed (${e.code}); passed over for ${Math.ceil(ms / 1000)} s`);
      }
    }
    throw last as GatewayError;
  }

  private async fetchFrom(target: UpstreamTarget, request: CanonicalRequest): Promise<UpstreamAnswer> {
    const slot = await this.waitForSlot(target);
    const query = this.config.email
      ? `${request.upstreamQuery}${request.upstreamQuery ? '&' : ''}email=${encodeURIComponent(this.config.email)}`
      : request.upstreamQuery;
    // The path comes from a fixed table in nominatim-request.ts, never from the caller.
    const url = `${target.baseUrl}${request.upstreamPath}${query ? `?${query}` : ''}`;
    const started = performance.now();
    const endTimer = this.metrics.upstreamDuration.startTimer({ endpoint: request.endpoint, upstream: target.host });
    try {
      // HttpModule's axios instance, called directly: HttpService.get's Observable cancels the request
      // when firstValueFrom unsubscribes, which builds a CanceledError with its stack for every answer
      // (~3 % of a miss's CPU, measured), and the time until the request is written counts against pacing.
      const res = await this.http.axiosRef.get<ArrayBuffer>(url, {
        responseType: 'arraybuffer',
        timeout: this.config.timeoutMs,
        // Counted as the body arrives (decompressed): past it axios destroys the connection at once.
        maxContentLength: this.config.maxBytes,
        signal: AbortSignal.timeout(this.config.timeoutMs + 50),
        maxRedirects: 0,
        validateStatus: () => true,
        headers: { 'User-Agent': this.config.userAgent, Accept: '*/*' },
        transport: signallingTransport(slot.sent),
      });
      endTimer();
      const body = Buffer.from(res.data);
      const contentType = String(res.headers['content-type'] ?? 'application/octet-stream');
      const ms = Math.round(performance.now() - started);
      // Only a 200 is stored; Nominatim's own errors go back as they are (5xx and redirects become 502 below).
      const problem = res.status === 200 ? upstreamBodyProblem(request, contentType, body) : null;
      this.metrics.upstreamRequests.inc({ endpoint: request.endpoint, status: problem === null ? String(res.status) : 'invalid', upstream: target.host });
      target.status.record(request.endpoint, problem === null ? res.status : 'error', ms);
      if (problem !== null) {
        this.logger.warn(`Nominatim ${target.host} ${request.endpoint} answered 200 after ${ms} ms with ${problem}; not stored`);
        throw upstreamInvalid(problem);
      }
      if (res.status >= 500 || isRedirect(res.status)) {
        const advice = isRedirect(res.status) ? `: ${redirectAdvice(res.headers['location'] as string | undefined, url, request.upstreamPath)}` : '';
        this.logger.warn(`Nominatim ${target.host} ${request.endpoint} answered ${res.status} after ${ms} ms${advice}`);
      }
      const retryAfter = res.headers['retry-after'] as string | undefined;
      target.lastRetryAfterMs = retryAfterMs(retryAfter);
      return this.interpret(target, res.status, contentType, body, retryAfter);
    } catch (e) {
      if (e instanceof GatewayError) throw e;
      slot.sent(); // never sent (an invalid URL, …): the next request need not wait for it
      endTimer();
      const err = e as AxiosError;
      if (err.code === AxiosError.ERR_BAD_RESPONSE && err.message.includes('maxContentLength')) {
        const ms = Math.round(performance.now() - started);
        this.metrics.upstreamRequests.inc({ endpoint: request.endpoint, status: 'too_large', upstream: target.host });
        target.status.record(request.endpoint, 'error', ms);
        this.logger.warn(`Nominatim ${target.host} ${request.endpoint} answered more than ${this.config.maxBytes} bytes (UPSTREAM_MAX_BYTES); cut off after ${ms} ms`);
        throw upstreamTooLarge(this.config.maxBytes);
      }
      const timedOut =
        err.code === 'ECONNABORTED' || err.code === 'ETIMEDOUT' || err.name === 'CanceledError' || err.name === 'AbortError';
      this.metrics.upstreamRequests.inc({ endpoint: request.endpoint, status: timedOut ? 'timeout' : 'error', upstream: target.host });
      const ms = Math.round(performance.now() - started);
      target.status.record(request.endpoint, timedOut ? 'timeout' : 'error', ms);
      if (timedOut) {
        this.logger.warn(`Nominatim ${target.host} ${request.endpoint} timed out after ${ms} ms`);
        throw upstreamTimeout(this.config.timeoutMs);
      }
      this.logger.warn(`Nominatim ${target.host} ${request.endpoint} unreachable after ${ms} ms: ${err.code ?? err.message}`);
      throw upstreamFailed(err.code ?? 'network error');
    }
  }

  private async waitForSlot(target: UpstreamTarget): Promise<PacerGrant> {
    const waiting = () => this.targets.reduce((n, t) => n + t.pacer.waiting, 0);
    this.metrics.pacingWaiting.set(waiting() + 1);
    try {
      const grant = await target.pacer.acquire(undefined, true);
      this.metrics.pacingWait.observe(grant.waitedMs / 1000);
      return grant;
    } catch (e) {
      if (e instanceof QueueFullError) {
        this.metrics.pacingRejected.inc({ reason: 'queue_full' });
        throw upstreamBusy(
          `Too many uncached requests are waiting for Nominatim (at most ${target.maxRps} request${target.maxRps === 1 ? '' : 's'}/second); try again later`,
          'upstream_queue_full',
          e.retryAfterSeconds,
        );
      }
      if (e instanceof CoolingDownError) {
        this.metrics.pacingRejected.inc({ reason: 'cooldown' });
        throw upstreamBusy('Nominatim asked us to slow down; try again later', 'upstream_cooldown', e.retryAfterSeconds);
      }
      throw e;
    } finally {
      this.metrics.pacingWaiting.set(waiting());
    }
  }

  private async interpret(
    target: UpstreamTarget,
    status: number,
    contentType: string,
    body: Buffer,
    retryAfter?: string,
  ): Promise<UpstreamAnswer> {
    if (status === 429 || status === 403) {
      const ms = this.coolDownMs(target, retryAfter);
      await target.pacer.coolDown(ms);
      if (!target.coolingEpisode) {
        target.coolingEpisode = true;
        this.logger.error(
          `Nominatim ${target.host} answered ${status}: sending nothing to it for ${Math.ceil(ms / 1000)} s. ` +
            'Check NOMINATIM_USER_AGENT / NOMINATIM_EMAIL and the usage policy.',
        );
      }
      throw upstreamBusy('Nominatim is refusing requests for now; try again later', 'upstream_refused', ms / 1000, status);
    }
    if (target.coolingEpisode) {
      target.coolingEpisode = false;
      target.backoffMs = FIRST_BACKOFF_MS;
      this.logger.log(`Nominatim ${target.host} accepts requests again`);
    }
    if (status >= 500) throw upstreamFailed(`status ${status}`, status);
    if (isRedirect(status)) throw upstreamFailed(`status ${status} (a redirect, not followed)`, status);
    return { status, contentType, body };
  }

  /**
   * Retry-After (seconds or HTTP date) when given, else exponential back-off. With several upstreams it
   * is at most UPSTREAM_BACKOFF_MAX_SECONDS, as the demotion is: the others carry the load meanwhile.
   */
  private coolDownMs(target: UpstreamTarget, retryAfter: string | undefined): number {
    const max = this.targets.length === 1 ? MAX_COOLDOWN_MS : Math.min(MAX_COOLDOWN_MS, this.config.backoffMaxMs);
    const given = retryAfterMs(retryAfter);
    if (given !== undefined) return Math.min(given, max);
    const ms = Math.min(target.backoffMs, max);
    target.backoffMs = Math.min(target.backoffMs * 2, MAX_COOLDOWN_MS);
    return ms;
  }
}
