import { CanActivate, ExecutionContext, Inject, Injectable, UnauthorizedException } from '@nestjs/common';
import type { Request, Response } from 'express';
import { createHash, timingSafeEqual } from 'node:crypto';
import { appConfig, AppConfig } from '../config/configuration';

/** Digests have one length whatever was sent, so timingSafeEqual never sees unequal lengths. */
function digest(s: string): Buffer {
  return createHash('sha256').update(s, 'utf8').digest();
}

/**
 * `Authorization: Bearer <ADMIN_TOKEN>`, compared in constant time (the token's length leaks neither).
 * The admin module is only registered when ADMIN_TOKEN is set; this guard refuses anyway without one.
 */
@Injectable()
export class AdminTokenGuard implements CanActivate {
  private readonly expected: Buffer | null;

  constructor(@Inject(appConfig.KEY) config: AppConfig) {
    this.expected = config.adminToken === undefined ? null : digest(config.adminToken);
  }

  canActivate(context: ExecutionContext): boolean {
    const http = context.switchToHttp();
    const header = http.getRequest<Request>().headers.authorization;
    const match = typeof header === 'string' ? /^Bearer[ \t]+(\S+)[ \t]*$/i.exec(header) : null;
    const given = match === null ? null : digest(match[1]);
    // Compare even without a usable header, so every refusal costs the same.
    const ok = timingSafeEqual(given ?? digest(''), this.expected ?? digest('\0')) && given !== null && this.expected !== null;
    if (ok) return true;
    http.getResponse<Response>().setHeader('WWW-Authenticate', 'Bearer realm="places-cache admin"');
    throw new UnauthorizedException(
      match === null ? 'Send Authorization: Bearer <ADMIN_TOKEN>' : 'The bearer token is not valid',
    );
  }
}
