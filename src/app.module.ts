import { DynamicModule, Module } from '@nestjs/common';
import { ConfigModule } from '@nestjs/config';
import { AdminModule } from './admin/admin.module';
import { CacheModule } from './cache/cache.module';
import {
  appConfig,
  cacheConfig,
  nominatimConfig,
  redisConfig,
  throttleConfig,
  validateEnv,
} from './config/configuration';
import { DashboardModule } from './dashboard/dashboard.module';
import { HealthModule } from './health/health.module';
import { FrontDoor } from './http/front-door.service';
import { LoggingModule } from './logging/logging.module';
import { MetricsModule } from './metrics/metrics.module';
import { PlacesModule } from './places/places.module';
import { ThrottleModule } from './throttle/throttle.module';

@Module({
  imports: [
    ConfigModule.forRoot({
      isGlobal: true,
      ignoreEnvFile: true,
      cache: true,
      validate: validateEnv,
      load: [appConfig, redisConfig, cacheConfig, nominatimConfig, throttleConfig],
    }),
    LoggingModule,
    MetricsModule,
    CacheModule,
    PlacesModule,
    HealthModule,
    ThrottleModule,
    DashboardModule,
  ],
  providers: [FrontDoor],
})
export class AppModule {
  /**
   * The root module with the parts that exist only under some configuration, decided when the app is
   * built (createApp) rather than when this file is loaded: the admin routes need ADMIN_TOKEN.
   */
  static register(env: Record<string, string | undefined> = process.env): DynamicModule {
    return { module: AppModule, imports: [AdminModule.forEnv(env)] };
  }
}
