import { Global, Module } from '@nestjs/common';
import { MetricsController } from './metrics.controller';
import { MetricsService } from './metrics.service';
import { UpstreamBudget } from './upstream-budget';

@Global()
@Module({ controllers: [MetricsController], providers: [MetricsService, UpstreamBudget], exports: [MetricsService] })
export class MetricsModule {}
