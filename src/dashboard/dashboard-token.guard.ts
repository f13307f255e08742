import { CanActivate, ExecutionContext, Inject, Injectable, UnauthorizedException } from '@nestjs/common';
import type { Request, Response } from 'express';
import { createHash, timingSafeEqual } from 'node:crypto';
import { appConfig, AppConfig } from '../config/configuration';

const digest = (s: string) => createHash('sha256').update(s, 'utf8').digest();

/** The token a request carries: `Bearer <token>`, or the password of `Basic` (any user name). */
export function presentedToken(header: string | undefined): string | null {
  if (typeof header !== 'string') return null;
  const bearer = /^Bearer[ \t]+(\S+)[ \t]*$/i.exec(header);
  if (bearer !== null) return bearer[1];
  const basic = /^Basic[ \t]+([A-Za-z0-9+/]+={0,2})[ \t]*$/i.exec(header);
  if (basic === null) return null;
  const decoded = Buffer.from(basic[1], 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  return colon === -1 ? null : decoded.slice(colon + 1);
}

/**
 * /dashboard is protected like /metrics: open without METRICS_TOKEN, else the token is required. A
 * browser cannot add a bearer header to a page it navigates to, so HTTP Basic is accepted too (the
 * token as the password, any user name): the browser asks for it once and sends it with the page's
 * scripts and data requests. Compared in constant time.
 */
@Injectable()
export class DashboardTokenGuard implements CanActivate {
  private readonly expected: Buffer | null;

  constructor(@Inject(appConfig.KEY) config: AppConfig) {
    this.expected = config.metricsToken === undefined ? null : digest(config.metricsToken);
  }

  canActivate(context: ExecutionContext): boolean {
    if (this.expected === null) return true;
    const http = context.switchToHttp();
    const given = presentedToken(http.getRequest<Request>().headers.authorization);
    const ok = timingSafeEqual(digest(given ?? ''), this.expected) && given !== null;
    if (ok) return true;
    http.getResponse<Response>().setHeader('WWW-Authenticate', 'Basic realm="places-cache dashboard", charset="UTF-8"');
    throw new UnauthorizedException('Send the METRICS_TOKEN: as the password of HTTP Basic (any user name), or Authorization: Bearer <METRICS_TOKEN>');
  }
}
