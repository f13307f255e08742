import { CanActivate, ExecutionContext, UnauthorizedException } from '@nestjs/common';
import type { Request, Response } from 'express';
import { createHash, timingSafeEqual } from 'node:crypto';

/** Digests have one length whatever was sent, so timingSafeEqual never sees unequal lengths. */
function digest(s: string): Buffer {
  return createHash('sha256').update(s, 'utf8').digest();
}

/**
 * `Authorization: Bearer <token>`, compared in constant time (the token's length leaks neither).
 * Without a configured token the routes are closed, or open where `openWithoutToken` says so.
 */
export abstract class BearerTokenGuard implements CanActivate {
  private readonly expected: Buffer | null;

  protected constructor(
    token: string | undefined,
    /** the environment variable that holds the token, named in the refusal */
    private readonly variable: string,
    private readonly realm: string,
    private readonly openWithoutToken: boolean,
  ) {
    this.expected = token === undefined ? null : digest(token);
  }

  canActivate(context: ExecutionContext): boolean {
    if (this.expected === null && this.openWithoutToken) return true;
    const http = context.switchToHttp();
    const header = http.getRequest<Request>().headers.authorization;
    const match = typeof header === 'string' ? /^Bearer[ \t]+(\S+)[ \t]*$/i.exec(header) : null;
    const given = match === null ? null : digest(match[1]);
    // Compare even without a usable header, so every refusal costs the same.
    const ok = timingSafeEqual(given ?? digest(''), this.expected ?? digest('\0')) && given !== null && this.expected !== null;
    if (ok) return true;
    http.getResponse<Response>().setHeader('WWW-Authenticate', `Bearer realm="${this.realm}"`);
    throw new UnauthorizedException(
      match === null ? `Send Authorization: Bearer <${this.variable}>` : 'The bearer token is not valid',
    );
  }
}
