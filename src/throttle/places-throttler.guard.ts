import { ExecutionContext, HttpException, HttpStatus, Inject, Injectable } from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import {
  InjectThrottlerOptions,
  InjectThrottlerStorage,
  ThrottlerGuard,
  ThrottlerLimitDetail,
  type ThrottlerModuleOptions,
  type ThrottlerStorage,
} from '@nestjs/throttler';
import type { Request, Response } from 'express';
import { appConfig, AppConfig, throttleConfig, ThrottleConfig } from '../config/configuration';
import { clientIp } from '../common/client-ip';
import { MetricsService } from '../metrics/metrics.service';
import { PlacesController } from '../places/places.controller';

/**
 * The per-client allowance for requests that reach Nest on the places routes: misses (which may cost
 * an upstream call), invalid requests and uncacheable ones. Hits never get here; the front door counts
 * them separately (HitRateLimiter). Health, metrics, admin and docs are not limited.
 */
@Injectable()
export class PlacesThrottlerGuard extends ThrottlerGuard {
  constructor(
    @InjectThrottlerOptions() options: ThrottlerModuleOptions,
    @InjectThrottlerStorage() storage: ThrottlerStorage,
    reflector: Reflector,
    @Inject(throttleConfig.KEY) private readonly config: ThrottleConfig,
    @Inject(appConfig.KEY) private readonly app: AppConfig,
    private readonly metrics: MetricsService,
  ) {
    super(options, storage, reflector);
  }

  protected override async shouldSkip(context: ExecutionContext): Promise<boolean> {
    return !this.config.enabled || context.getType() !== 'http' || context.getClass() !== PlacesController;
  }

  /** The same identity as the hit limiter's: TRUST_PROXY-aware, the last X-Forwarded-For entry. */
  protected override async getTracker(req: Record<string, unknown>): Promise<string> {
    return clientIp(req as unknown as Request, this.app.trustProxy);
  }

  /** One allowance per client for all the places routes (the default key is per handler). */
  protected override generateKey(_context: ExecutionContext, tracker: string, throttlerName: string): string {
    return `${throttlerName}:${tracker}`;
  }

  /** 429 in our error shape (the exception filter writes it), with Retry-After like the hit path's. */
  protected override async throwThrottlingException(context: ExecutionContext, detail: ThrottlerLimitDetail): Promise<void> {
    const res = context.switchToHttp().getResponse<Response>();
    res.setHeader('Retry-After', String(Math.max(1, detail.timeToBlockExpire)));
    this.metrics.rateLimited.inc({ kind: 'miss' });
    throw new HttpException(
      { statusCode: HttpStatus.TOO_MANY_REQUESTS, error: 'Too Many Requests', message: 'Rate limit exceeded; try again later' },
      HttpStatus.TOO_MANY_REQUESTS,
    );
  }
}
