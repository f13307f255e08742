import { Inject, Injectable } from '@nestjs/common';
import { BearerTokenGuard } from '../common/bearer-token.guard';
import { appConfig, AppConfig } from '../config/configuration';

/**
 * `Authorization: Bearer <METRICS_TOKEN>` on /metrics when METRICS_TOKEN is set (Prometheus'
 * `authorization` scrape setting sends it); without it /metrics is open (a private
 * network's Prometheus needs no secret).
 */
@Injectable()
export class MetricsTokenGuard extends BearerTokenGuard {
  constructor(@Inject(appConfig.KEY) config: AppConfig) {
    super(config.metricsToken, 'METRICS_TOKEN', 'places-cache metrics', true);
  }
}
