import { Inject, Injectable, OnModuleInit } from '@nestjs/common';
import { nominatimConfig, NominatimConfig } from '../config/configuration';
import { MetricsService } from './metrics.service';

/**
 * Publishes the fleet's upstream budget (NOMINATIM_MAX_RPS, per upstream) as a gauge, labelled with the upstream's
 * host only (never its full URL, which may carry credentials), so that a panel or an alert can put the
 * upstream request rate against it without knowing the configuration.
 */
@Injectable()
export class UpstreamBudget implements OnModuleInit {
  constructor(
    @Inject(nominatimConfig.KEY) private readonly config: NominatimConfig,
    private readonly metrics: MetricsService,
  ) {}

  onModuleInit(): void {
    for (const u of this.config.upstreams) this.metrics.upstreamBudget.set({ upstream: u.host }, u.maxRps);
  }
}
