import { HttpService } from '@nestjs/axios';
import { Inject, Injectable, Logger } from '@nestjs/common';
import { AxiosError } from 'axios';
import { firstValueFrom } from 'rxjs';
import { nominatimConfig, NominatimConfig } from '../../config/configuration';
import { MetricsService } from '../../metrics/metrics.service';
import { GatewayError } from '../../common/gateway.errors';
import { upstreamBusy, upstreamFailed, upstreamInvalid, upstreamTimeout, upstreamTooLarge } from './upstream-errors';
import { CanonicalRequest } from './nominatim-request';
import { upstreamBodyProblem } from './upstream-body';
import { CoolingDownError, PacerGrant, QueueFullError, UpstreamPacer } from './upstream-pacer';
import { UpstreamStatus } from './upstream-status';
import { signallingTransport } from './upstream-transport';

export interface UpstreamAnswer {
  status: number;
  contentType: string;
  body: Buffer;
}

export const UPSTREAM_PACER = 'UPSTREAM_PACER';

/** Longest cool-down we accept from a Retry-After header, and our own back-off bounds. */
const MAX_COOLDOWN_MS = 10 * 60_000;
const FIRST_BACKOFF_MS = 5_000;

/**
 * The only code that knows Nominatim: base URL, User-Agent, e-mail, timeout, pacing and how its
 * refusals look. Every request waits for its slot (the usage policy allows 1 request/second for the
 * whole application); 429/403 start a cool-down during which nothing is sent.
 */
@Injectable()
export class NominatimClient {
  private readonly logger = new Logger(NominatimClient.name);
  private backoffMs = FIRST_BACKOFF_MS;
  private coolingEpisode = false;

  constructor(
    private readonly http: HttpService,
    @Inject(nominatimConfig.KEY) private readonly config: NominatimConfig,
    @Inject(UPSTREAM_PACER) private readonly pacer: UpstreamPacer,
    private readonly metrics: MetricsService,
    private readonly upstreamStatus: UpstreamStatus,
  ) {}

  async fetch(request: CanonicalRequest): Promise<UpstreamAnswer> {
    const slot = await this.waitForSlot();
    const query = this.config.email
      ? `${request.upstreamQuery}${request.upstreamQuery ? '&' : ''}email=${encodeURIComponent(this.config.email)}`
      : request.upstreamQuery;
    // The path comes from a fixed table in nominatim-request.ts, never from the caller.
    const url = `${this.config.baseUrl}${request.upstreamPath}${query ? `?${query}` : ''}`;
    const started = performance.now();
    const endTimer = this.metrics.upstreamDuration.startTimer({ endpoint: request.endpoint });
    try {
      const res = await firstValueFrom(
        this.http.get<ArrayBuffer>(url, {
          responseType: 'arraybuffer',
          timeout: this.config.timeoutMs,
          // Counted as the body arrives (decompressed): past it axios destroys the connection at once.
          maxContentLength: this.config.maxBytes,
          signal: AbortSignal.timeout(this.config.timeoutMs + 50),
          maxRedirects: 0,
          validateStatus: () => true,
          headers: { 'User-Agent': this.config.userAgent, Accept: '*/*' },
          transport: signallingTransport(slot.sent),
        }),
      );
      endTimer();
      const body = Buffer.from(res.data);
      const contentType = String(res.headers['content-type'] ?? 'application/octet-stream');
      const ms = Math.round(performance.now() - started);
      // Only a 200 is stored; Nominatim's own errors go back as they are (and 5xx become 502 below).
      const problem = res.status === 200 ? upstreamBodyProblem(request, contentType, body) : null;
      this.metrics.upstreamRequests.inc({ endpoint: request.endpoint, status: problem === null ? String(res.status) : 'invalid' });
      this.upstreamStatus.record(request.endpoint, problem === null ? res.status : 'error', ms);
      if (problem !== null) {
        this.logger.warn(`Nominatim ${request.endpoint} answered 200 after ${ms} ms with ${problem}; not stored`);
        throw upstreamInvalid(problem);
      }
      if (res.status >= 500) this.logger.warn(`Nominatim ${request.endpoint} answered ${res.status} after ${ms} ms`);
      return this.interpret(res.status, contentType, body, res.headers['retry-after'] as string | undefined);
    } catch (e) {
      if (e instanceof GatewayError) throw e;
      slot.sent(); // never sent (an invalid URL, …): the next request need not wait for it
      endTimer();
      const err = e as AxiosError;
      if (err.code === AxiosError.ERR_BAD_RESPONSE && err.message.includes('maxContentLength')) {
        const ms = Math.round(performance.now() - started);
        this.metrics.upstreamRequests.inc({ endpoint: request.endpoint, status: 'too_large' });
        this.upstreamStatus.record(request.endpoint, 'error', ms);
        this.logger.warn(`Nominatim ${request.endpoint} answered more than ${this.config.maxBytes} bytes (UPSTREAM_MAX_BYTES); cut off after ${ms} ms`);
        throw upstreamTooLarge(this.config.maxBytes);
      }
      const timedOut =
        err.code === 'ECONNABORTED' || err.code === 'ETIMEDOUT' || err.name === 'CanceledError' || err.name === 'AbortError';
      this.metrics.upstreamRequests.inc({ endpoint: request.endpoint, status: timedOut ? 'timeout' : 'error' });
      const ms = Math.round(performance.now() - started);
      this.upstreamStatus.record(request.endpoint, timedOut ? 'timeout' : 'error', ms);
      if (timedOut) {
        this.logger.warn(`Nominatim ${request.endpoint} timed out after ${ms} ms`);
        throw upstreamTimeout(this.config.timeoutMs);
      }
      this.logger.warn(`Nominatim ${request.endpoint} unreachable after ${ms} ms: ${err.code ?? err.message}`);
      throw upstreamFailed(err.code ?? 'network error');
    }
  }

  private async waitForSlot(): Promise<PacerGrant> {
    this.metrics.pacingWaiting.set(this.pacer.waiting + 1);
    try {
      const grant = await this.pacer.acquire(undefined, true);
      this.metrics.pacingWait.observe(grant.waitedMs / 1000);
      return grant;
    } catch (e) {
      if (e instanceof QueueFullError) {
        this.metrics.pacingRejected.inc({ reason: 'queue_full' });
        throw upstreamBusy(
          'Too many uncached requests are waiting for Nominatim (1 request/second); try again later',
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
      this.metrics.pacingWaiting.set(this.pacer.waiting);
    }
  }

  private async interpret(status: number, contentType: string, body: Buffer, retryAfter?: string): Promise<UpstreamAnswer> {
    if (status === 429 || status === 403) {
      const ms = this.coolDownMs(retryAfter);
      await this.pacer.coolDown(ms);
      if (!this.coolingEpisode) {
        this.coolingEpisode = true;
        this.logger.error(
          `Nominatim answered ${status}: sending nothing upstream for ${Math.ceil(ms / 1000)} s. ` +
            'Check NOMINATIM_USER_AGENT / NOMINATIM_EMAIL and the usage policy.',
        );
      }
      throw upstreamBusy('Nominatim is refusing requests for now; try again later', 'upstream_refused', ms / 1000, status);
    }
    if (this.coolingEpisode) {
      this.coolingEpisode = false;
      this.backoffMs = FIRST_BACKOFF_MS;
      this.logger.log('Nominatim accepts requests again');
    }
    if (status >= 500) throw upstreamFailed(`status ${status}`, status);
    return { status, contentType, body };
  }

  /** Retry-After (seconds or HTTP date) when given, else exponential back-off. */
  private coolDownMs(retryAfter: string | undefined): number {
    if (retryAfter !== undefined) {
      const secs = /^\d+$/.test(retryAfter.trim()) ? Number(retryAfter) * 1000 : Date.parse(retryAfter) - Date.now();
      if (Number.isFinite(secs) && secs > 0) return Math.min(secs, MAX_COOLDOWN_MS);
    }
    const ms = this.backoffMs;
    this.backoffMs = Math.min(this.backoffMs * 2, MAX_COOLDOWN_MS);
    return ms;
  }
}
