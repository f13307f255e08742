import { Module } from '@nestjs/common';
import { DashboardController } from './dashboard.controller';
import { DashboardSampler } from './dashboard-sampler';
import { DashboardTokenGuard } from './dashboard-token.guard';

@Module({ controllers: [DashboardController], providers: [DashboardSampler, DashboardTokenGuard] })
export class DashboardModule {}
