import { Global, Inject, Module, OnApplicationShutdown } from '@nestjs/common';
import type { Logger } from 'pino';
import { appConfig, AppConfig } from '../config/configuration';
import { createAppLogger, settleLogger } from './app-logger';

export const APP_LOGGER = 'APP_LOGGER';

@Global()
@Module({
  providers: [
    {
      provide: APP_LOGGER,
      inject: [appConfig.KEY],
      useFactory: (config: AppConfig) =>
        createAppLogger(config.logLevel, undefined, [config.adminToken, config.metricsToken].filter((t) => t !== undefined)),
    },
  ],
  exports: [APP_LOGGER],
})
export class LoggingModule implements OnApplicationShutdown {
  constructor(@Inject(APP_LOGGER) private readonly logger: Logger) {}

  /**
   * The asynchronous destination may still hold the last lines (the request lines of the drained
   * requests) or be writing them: written out now, so the exit line lands after them.
   */
  async onApplicationShutdown(): Promise<void> {
    await settleLogger(this.logger);
  }
}
