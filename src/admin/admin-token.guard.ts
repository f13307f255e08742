import { Inject, Injectable } from '@nestjs/common';
import { BearerTokenGuard } from '../common/bearer-token.guard';
import { appConfig, AppConfig } from '../config/configuration';

/**
 * `Authorization: Bearer <ADMIN_TOKEN>` on the admin routes. The admin module is only registered when
 * ADMIN_TOKEN is set; this guard refuses anyway without one.
 */
@Injectable()
export class AdminTokenGuard extends BearerTokenGuard {
  constructor(@Inject(appConfig.KEY) config: AppConfig) {
    super(config.adminToken, 'ADMIN_TOKEN', 'places-cache admin', false);
  }
}
