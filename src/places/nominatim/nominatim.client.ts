import { HttpService } from '@nestjs/axios';
import { Inject, Injectable, Logger } from '@nestjs/common';
import { AxiosError, AxiosResponse } from 'axios';
import { nominatimConfig, NominatimConfig } from '../../config/configuration';
import { MetricsService } from '../../metrics/metrics.service';
import { GatewayError } from '../../common/gateway.errors';
import { upstreamBusy, upstreamFailed, upstreamInvalid, upstreamTimeout, upstreamTooLarge } from './upstream-errors';
import { CanonicalRequest } from './nominatim-request';
import { upstreamBodyProblem, upstreamErrorProblem } from './upstream-body';
import { CoolingDownError, QueueFullError } from './pacer-errors';
import type { PacerGrant } from './pacer-contract';
import { retryAfterMs, UpstreamDemotedError, UpstreamPreference } from './upstream-preference';
import { isRedirect, redirectAdvice } from './upstream-redirect';
import { UpstreamTarget, UPSTREAMS } from './upstream-target';
import { UpstreamResult, UpstreamVerdict, verdictOf } from './upstream-verdict';
import { signallingTransport } from './upstream-transport';

interface UpstreamAnswer {
  status: number;
  contentType: string;
  body: Buffer;
}

/** Longest cool-down we accept from a Retry-After header, and our own back-off bounds. */
const MAX_COOLDOWN_MS = 10 * 60_000;
export const FIRST_BACKOFF_MS = 5_000;

/**
 * How asking one upstream ended: its answer, or the error for the caller with the verdict on the
 * upstream (`not_asked`: its queue was full) and the Retry-After it sent, for the demotion.
 */
type Attempt = { verdict: 'answered'; answer: UpstreamAnswer } | Failure;
type Failure = { verdict: UpstreamVerdict | 'not_asked'; error: GatewayError; retryAfterMs?: number };

/**
 * The only code that knows Nominatim: base URLs, User-Agent, e-mail, timeout, pacing and how its
 * refusals look. Every request waits for its slot (the usage policy allows 1 request/second for the
 * whole application); 429/403, and a 503 with Retry-After, start a cool-down during which nothing is
 * sent. With several upstreams (NOMINATIM_URL list), each has its own pacer, and a failing one hands
 * the request to the next.
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
    if (this.targets.length > 1) return this.fetchWithFailover(request);
    const attempt = await this.ask(this.targets[0], request);
    if ('answer' in attempt) return attempt.answer;
    throw attempt.error;
  }

  /**
   * Several upstreams: each not demoted, in order of preference, until one answers. One whose verdict
   * is `refused` or `failed` is demoted (see UpstreamPreference) and the next is asked; a full queue
   * moves on without demoting. Nominatim's own answers (200, 400, 404…, or one too large) end the search.
   */
  private async fetchWithFailover(request: CanonicalRequest): Promise<UpstreamAnswer> {
    const order = this.preference.order(Date.now());
    if (order.length === 0) throw this.unavailable();
    let last: GatewayError | undefined;
    for (const i of order) {
      // One demoted since the order was taken, while this miss was at an earlier one (a timeout takes
      // UPSTREAM_TIMEOUT_MS), is passed over too: nothing is sent to it until its back-off ends.
      if (this.preference.remainingMs(i, Date.now()) > 0) continue;
      const target = this.targets[i];
      const demoted = this.preference.demotion(i);
      const attempt = await this.ask(target, request, demoted);
      if (attempt.verdict === 'answered') {
        this.preference.succeeded(i, demoted);
        if ('answer' in attempt) return attempt.answer;
        throw attempt.error; // too large: the next upstream would send the same answer
      }
      last = attempt.error;
      if (attempt.verdict === 'not_asked') continue;
      // A failure of a request sent before the upstream's last demotion is that demotion's: one warn line each.
      const ms = this.preference.demote(i, Date.now(), attempt.retryAfterMs, demoted);
      if (ms !== undefined) this.logger.warn(`Upstream ${target.host} failed (${attempt.error.code}); passed over for ${Math.ceil(ms / 1000)} s`);
    }
    throw last ?? this.unavailable();
  }

  /** Several upstreams, none that may be asked now: 503 until the first demoted one may be again. */
  private unavailable(): GatewayError {
    return upstreamBusy('Every upstream is failing; try again later', 'upstream_unavailable', this.preference.soonestMs(Date.now()) / 1000);
  }

  /**
   * One upstream, once: waits for its slot, asks, and judges what came back. `demoted`: aborts the wait
   * when the upstream is demoted meanwhile (another miss saw it fail); nothing is sent then.
   */
  private async ask(target: UpstreamTarget, request: CanonicalRequest, demoted?: AbortSignal): Promise<Attempt> {
    const slot = await this.waitForSlot(target, demoted);
    if ('error' in slot) return slot;
    const query = this.config.email
      ? `${request.upstreamQuery}${request.upstreamQuery ? '&' : ''}email=${encodeURIComponent(this.config.email)}`
      : request.upstreamQuery;
    // The path comes from a fixed table in nominatim-request.ts, never from the caller.
    const url = `${target.baseUrl}${request.upstreamPath}${query ? `?${query}` : ''}`;
    const started = performance.now();
    const endTimer = this.metrics.upstreamDuration.startTimer({ endpoint: request.endpoint, upstream: target.host });
    let res: AxiosResponse<ArrayBuffer>;
    try {
      // HttpModule's axios instance, called directly: HttpService.get's Observable cancels the request
      // when firstValueFrom unsubscribes, which builds a CanceledError with its stack for every answer
      // (~3 % of a miss's CPU, measured), and the time until the request is written counts against pacing.
      res = await this.http.axiosRef.get<ArrayBuffer>(url, {
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
    } catch (e) {
      slot.sent(false); // never sent (an invalid URL, …): the next request need not wait for it
      endTimer();
      return this.noAnswer(target, request, e as AxiosError, Math.round(performance.now() - started));
    }
    endTimer();
    const ms = Math.round(performance.now() - started);
    const { status } = res;
    const body = Buffer.from(res.data);
    const contentType = String(res.headers['content-type'] ?? 'application/octet-stream');
    // Only a 200 is stored; Nominatim's own errors go back as they are (5xx, redirects and other 2xx
    // become 502 below). Either must be Nominatim's: not a proxy's or a web server's page.
    let problem: string | null = null;
    if (status === 200) problem = upstreamBodyProblem(request, contentType, body);
    else if (verdictOf(status) === 'answered') problem = upstreamErrorProblem(request, status, contentType, body);
    const verdict = this.record(target, request, problem === null ? status : 'invalid', ms);
    if (problem !== null) {
      this.logger.warn(`Nominatim ${target.host} ${request.endpoint} answered ${status} after ${ms} ms with ${problem}; not stored`);
      return { verdict, error: upstreamInvalid(problem) };
    }
    const retryAfter = res.headers['retry-after'] as string | undefined;
    if (verdict === 'refused') return this.refused(target, status, retryAfter, started);
    // RFC 9110 10.2.3: a 503's Retry-After says how long the service will be unavailable (maintenance).
    const pauseMs = status === 503 ? retryAfterMs(retryAfter) : undefined;
    // An answer to a request sent before the cool-down began says nothing of its end.
    if (target.coolingSince !== undefined && pauseMs === undefined && started >= target.coolingSince) {
      target.coolingSince = undefined;
      target.backoffMs = FIRST_BACKOFF_MS;
      this.logger.log(`Nominatim ${target.host} accepts requests again`);
    }
    if (verdict === 'failed') return this.failed(target, request, url, res, ms, started, pauseMs);
    return { verdict, answer: { status, contentType, body } };
  }

  /**
   * A redirect, a 5xx or a 2xx other than 200: 502. A 503 with Retry-After (`pauseMs`: maintenance)
   * also starts the fleet's cool-down, as a 429 does, capped alike; the 502 then carries Retry-After.
   */
  private async failed(target: UpstreamTarget, request: CanonicalRequest, url: string, res: AxiosResponse, ms: number, started: number, pauseMs?: number): Promise<Failure> {
    const { status } = res;
    const redirect = isRedirect(status);
    const coolDownMs = pauseMs === undefined ? undefined : Math.min(pauseMs, this.coolDownCapMs());
    if (coolDownMs !== undefined) await this.coolDown(target, coolDownMs, started);
    const advice = redirect
      ? `: ${redirectAdvice(res.headers['location'] as string | undefined, url, request.upstreamPath)}`
      : coolDownMs !== undefined
        ? `; sending nothing to it for ${Math.ceil(coolDownMs / 1000)} s (Retry-After)`
        : '';
    this.logger.warn(`Nominatim ${target.host} ${request.endpoint} answered ${status} after ${ms} ms${advice}`);
    const detail = redirect ? `status ${status} (a redirect, not followed)` : `status ${status}`;
    const error = upstreamFailed(detail, status, coolDownMs === undefined ? undefined : coolDownMs / 1000);
    return { verdict: 'failed', error, retryAfterMs: coolDownMs ?? retryAfterMs(res.headers['retry-after'] as string | undefined) };
  }

  /** No usable status: the answer was too large, or none came (timeout, no connection). */
  private noAnswer(target: UpstreamTarget, request: CanonicalRequest, err: AxiosError, ms: number): Failure {
    if (err.code === AxiosError.ERR_BAD_RESPONSE && err.message.includes('maxContentLength')) {
      const verdict = this.record(target, request, 'too_large', ms);
      this.logger.warn(`Nominatim ${target.host} ${request.endpoint} answered more than ${this.config.maxBytes} bytes (UPSTREAM_MAX_BYTES); cut off after ${ms} ms`);
      return { verdict, error: upstreamTooLarge(this.config.maxBytes) };
    }
    const timedOut = err.code === 'ECONNABORTED' || err.code === 'ETIMEDOUT' || err.name === 'CanceledError' || err.name === 'AbortError';
    const verdict = this.record(target, request, timedOut ? 'timeout' : 'error', ms);
    if (timedOut) {
      this.logger.warn(`Nominatim ${target.host} ${request.endpoint} timed out after ${ms} ms`);
      return { verdict, error: upstreamTimeout(this.config.timeoutMs) };
    }
    this.logger.warn(`Nominatim ${target.host} ${request.endpoint} unreachable after ${ms} ms: ${err.code ?? err.message}`);
    return { verdict, error: upstreamFailed(err.code ?? 'network error') };
  }

  /** Counts the call (metrics, /health/upstream) and returns its verdict. */
  private record(target: UpstreamTarget, request: CanonicalRequest, result: UpstreamResult, ms: number): UpstreamVerdict {
    this.metrics.upstreamRequests.inc({ endpoint: request.endpoint, status: String(result), upstream: target.host });
    target.status.record(request.endpoint, result, ms);
    return verdictOf(result);
  }

  /**
   * 429 or 403: the fleet sends this upstream nothing for a while. A refusal of a request sent before
   * this process's cool-down began (`sentAt`: the misses already in flight when the first refusal
   * came) is that episode's, not one more in a row: it does not double the back-off; only a longer
   * Retry-After it brought extends the cool-down.
   */
  private async refused(target: UpstreamTarget, status: number, retryAfter: string | undefined, sentAt: number): Promise<Failure> {
    const counted = target.coolingSince !== undefined && sentAt < target.coolingSince;
    const ms = counted ? this.givenCoolDownMs(retryAfter) : this.coolDownMs(target, retryAfter);
    if (ms === undefined) return this.refusal(status, target.pacer.cooldownRemainingMs());
    await this.coolDown(target, ms, sentAt);
    // Logged once an episode: its first refusal, or one refusing a request sent after the episode began
    // (the upstream still refuses after a cool-down, at the doubled back-off).
    if (!counted) {
      this.logger.error(
        `Nominatim ${target.host} answered ${status}: sending nothing to it for ${Math.ceil(ms / 1000)} s. ` +
          'Check NOMINATIM_USER_AGENT / NOMINATIM_EMAIL and the usage policy.',
      );
    }
    return this.refusal(status, Math.max(ms, target.pacer.cooldownRemainingMs()));
  }

  /** The refusal's error; with several upstreams it is demoted for as long as the fleet sends it nothing. */
  private refusal(status: number, ms: number): Failure {
    const error = upstreamBusy('Nominatim is refusing requests for now; try again later', 'upstream_refused', ms / 1000, status);
    return { verdict: 'refused', error, retryAfterMs: ms };
  }

  /**
   * The fleet sends `target` nothing for `ms` (its pacer's shared cool-down): after a 429/403, or a 503
   * with Retry-After. Its end is logged once, at the next accepted answer.
   * `sentAt`: when the request so answered was sent; one sent before the episode began leaves its start.
   */
  private async coolDown(target: UpstreamTarget, ms: number, sentAt: number): Promise<void> {
    // Marked before the pacer makes the cool-down seen: misses failed by it then know this process saw the answer.
    if (target.coolingSince === undefined || sentAt >= target.coolingSince) target.coolingSince = performance.now();
    await target.pacer.coolDown(ms);
  }

  private async waitForSlot(target: UpstreamTarget, demoted?: AbortSignal): Promise<PacerGrant | Failure> {
    const waiting = () => this.targets.reduce((n, t) => n + t.pacer.waiting, 0);
    this.metrics.pacingWaiting.set(waiting() + 1);
    try {
      const grant = await target.pacer.acquire(demoted, true);
      this.metrics.pacingWait.observe(grant.waitedMs / 1000);
      return grant;
    } catch (e) {
      if (e instanceof QueueFullError) {
        this.metrics.pacingRejected.inc({ reason: 'queue_full' });
        const error = upstreamBusy(
          `Too many uncached requests are waiting for Nominatim (at most ${target.maxRps} request${target.maxRps === 1 ? '' : 's'}/second); try again later`,
          'upstream_queue_full',
          e.retryAfterSeconds,
        );
        return { verdict: 'not_asked', error };
      }
      if (e instanceof CoolingDownError) {
        // The fleet's cool-down after a 429/403 or a 503 with Retry-After. When this process saw that
        // answer (its episode), the miss that saw it demotes the upstream: this one only moves on.
        this.metrics.pacingRejected.inc({ reason: 'cooldown' });
        const error = upstreamBusy('Nominatim asked us to wait; try again later', 'upstream_cooldown', e.retryAfterSeconds);
        return { verdict: target.coolingSince !== undefined ? 'not_asked' : 'refused', error, retryAfterMs: e.retryAfterSeconds * 1000 };
      }
      if (e instanceof UpstreamDemotedError) {
        // Not sent, as another miss saw the upstream fail: the next one is asked (this error if none is left).
        return { verdict: 'not_asked', error: this.unavailable() };
      }
      throw e;
    } finally {
      this.metrics.pacingWaiting.set(waiting());
    }
  }

  /**
   * Retry-After (seconds or HTTP date) when given, else exponential back-off. With several upstreams it
   * is at most UPSTREAM_BACKOFF_MAX_SECONDS, as the demotion is: the others carry the load meanwhile.
   */
  private coolDownMs(target: UpstreamTarget, retryAfter: string | undefined): number {
    const given = this.givenCoolDownMs(retryAfter);
    if (given !== undefined) return given;
    const ms = Math.min(target.backoffMs, this.coolDownCapMs());
    target.backoffMs = Math.min(target.backoffMs * 2, MAX_COOLDOWN_MS);
    return ms;
  }

  /** The cool-down a Retry-After (seconds or HTTP date) asks for, capped; undefined without a usable one. */
  private givenCoolDownMs(retryAfter: string | undefined): number | undefined {
    const given = retryAfterMs(retryAfter);
    return given === undefined ? undefined : Math.min(given, this.coolDownCapMs());
  }

  /** The longest cool-down: MAX_COOLDOWN_MS, and with several upstreams UPSTREAM_BACKOFF_MAX_SECONDS, as the demotion is. */
  private coolDownCapMs(): number {
    return this.targets.length === 1 ? MAX_COOLDOWN_MS : Math.min(MAX_COOLDOWN_MS, this.config.backoffMaxMs);
  }
}
