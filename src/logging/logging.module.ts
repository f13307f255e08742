import { Global, Module } from '@nestjs/common';
import { appConfig, AppConfig } from '../config/configuration';
import { createAppLogger } from './app-logger';

export const APP_LOGGER = 'APP_LOGGER';

@Global()
@Module({
  providers: [
    {
      provide: APP_LOGGER,
      inject: [appConfig.KEY],
      useFactory: (config: AppConfig) => createAppLogger(config.logLevel),
    },
  ],
  exports: [APP_LOGGER],
})
export class LoggingModule {}
