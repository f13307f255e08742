import { ExecutionContext, UnauthorizedException } from '@nestjs/common';
import type { AppConfig } from '../config/configuration';
import { AdminTokenGuard } from './admin-token.guard';

const TOKEN = 'a-long-enough-admin-token';

function context(authorization: string | undefined): { ctx: ExecutionContext; headers: Map<string, string> } {
  const headers = new Map<string, string>();
  const req = { headers: authorization === undefined ? {} : { authorization } };
  const res = { setHeader: (name: string, value: string) => headers.set(name, value) };
  const ctx = { switchToHttp: () => ({ getRequest: () => req, getResponse: () => res }) } as unknown as ExecutionContext;
  return { ctx, headers };
}

describe(AdminTokenGuard.name, () => {
  const guard = new AdminTokenGuard({ adminToken: TOKEN } as AppConfig);

  it.each([`Bearer ${TOKEN}`, `bearer ${TOKEN}`, `BEARER  ${TOKEN} `, `Bearer\t${TOKEN}`])('lets %j in', (header) => {
    expect(guard.canActivate(context(header).ctx)).toBe(true);
  });

  it.each([
    [undefined, 'Send Authorization: Bearer <ADMIN_TOKEN>'],
    ['', 'Send Authorization: Bearer <ADMIN_TOKEN>'],
    [TOKEN, 'Send Authorization: Bearer <ADMIN_TOKEN>'],
    [`Basic ${TOKEN}`, 'Send Authorization: Bearer <ADMIN_TOKEN>'],
    [`Bearer ${TOKEN} extra`, 'Send Authorization: Bearer <ADMIN_TOKEN>'],
    [`Bearer ${TOKEN.slice(1)}`, 'The bearer token is not valid'],
    [`Bearer ${TOKEN}x`, 'The bearer token is not valid'],
    [`Bearer ${TOKEN.toUpperCase()}`, 'The bearer token is not valid'],
  ])('refuses %j with 401 and a WWW-Authenticate challenge', (header, message) => {
    const { ctx, headers } = context(header);
    let error: unknown;
    try {
      guard.canActivate(ctx);
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(UnauthorizedException);
    expect((error as UnauthorizedException).getResponse()).toEqual({ statusCode: 401, error: 'Unauthorized', message });
    expect(headers.get('WWW-Authenticate')).toBe('Bearer realm="places-cache admin"');
  });

  it('refuses everything when no token is configured', () => {
    const closed = new AdminTokenGuard({ adminToken: undefined } as AppConfig);
    expect(() => closed.canActivate(context('Bearer ').ctx)).toThrow(UnauthorizedException);
    expect(() => closed.canActivate(context('Bearer \0').ctx)).toThrow(UnauthorizedException);
  });
});
