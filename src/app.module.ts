import { Module } from '@nestjs/common';
import { ConfigModule } from '@nestjs/config';
import { CacheModule } from './cache/cache.module';
import {
  appConfig,
  cacheConfig,
  nominatimConfig,
  redisConfig,
  throttleConfig,
  validateEnv,
} from './config/configuration';
import { FrontDoor } from './http/front-door.service';
import { LoggingModule } from './logging/logging.module';
import { MetricsModule } from './metrics/metrics.module';
import { PlacesModule } from './places/places.module';

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
  ],
  providers: [FrontDoor],
})
export class AppModule {}
