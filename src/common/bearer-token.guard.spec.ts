import { ExecutionContext, UnauthorizedException } from '@nestjs/common';
import { AdminTokenGuard } from '../admin/admin-token.guard';
import type { AppConfig } from '../config/configuration';
import { MetricsTokenGuard } from '../metrics/metrics-token.guard';
import { BearerTokenGuard } from './bearer-token.guard';

const ADMIN_TOKEN = 'a-long-enough-admin-token';
const METRICS_TOKEN = 'a-long-enough-metrics-token';

/** An HTTP execution context with this Authorization header; `headers` collects what the guard sets. */
function context(authorization: string | undefined): { ctx: ExecutionContext; headers: Map<string, string> } {
  const headers = new Map<string, string>();
  const req = { headers: authorization === undefined ? {} : { authorization } };
  const res = { setHeader: (name: string, value: string) => headers.set(name, value) };
  const ctx = { switchToHttp: () => ({ getRequest: () => req, getResponse: () => res }) } as unknown as ExecutionContext;
  return { ctx, headers };
}

/** What the guard threw for this header (undefined when it let the request in), and the headers it set. */
function refusal(guard: BearerTokenGuard, header: string | undefined): { error: unknown; headers: Map<string, string> } {
  const { ctx, headers } = context(header);
  try {
    guard.canActivate(ctx);
  } catch (error) {
    return { error, headers };
  }
  return { error: undefined, headers };
}

function expectRefused(guard: BearerTokenGuard, header: string | undefined, message: string, realm: string): void {
  const { error, headers } = refusal(guard, header);
  expect(error).toBeInstanceOf(UnauthorizedException);
  expect((error as UnauthorizedException).getResponse()).toEqual({ statusCode: 401, error: 'Unauthorized', message });
  expect(headers.get('WWW-Authenticate')).toBe(`Bearer realm="${realm}"`);
}

describe(AdminTokenGuard.name, () => {
  const guard = new AdminTokenGuard({ adminToken: ADMIN_TOKEN } as AppConfig);

  it.each([`Bearer ${ADMIN_TOKEN}`, `bearer ${ADMIN_TOKEN}`, `BEARER  ${ADMIN_TOKEN} `, `Bearer\t${ADMIN_TOKEN}`])('lets %j in', (header) => {
    expect(guard.canActivate(context(header).ctx)).toBe(true);
  });

  it.each([
    [undefined, 'Send Authorization: Bearer <ADMIN_TOKEN>'],
    ['', 'Send Authorization: Bearer <ADMIN_TOKEN>'],
    [ADMIN_TOKEN, 'Send Authorization: Bearer <ADMIN_TOKEN>'],
    [`Basic ${ADMIN_TOKEN}`, 'Send Authorization: Bearer <ADMIN_TOKEN>'],
    [`Bearer ${ADMIN_TOKEN} extra`, 'Send Authorization: Bearer <ADMIN_TOKEN>'],
    [`Bearer ${ADMIN_TOKEN.slice(1)}`, 'The bearer token is not valid'],
    [`Bearer ${ADMIN_TOKEN}x`, 'The bearer token is not valid'],
    [`Bearer ${ADMIN_TOKEN.toUpperCase()}`, 'The bearer token is not valid'],
  ])('refuses %j with 401 and a WWW-Authenticate challenge', (header, message) => {
    expectRefused(guard, header, message, 'places-cache admin');
  });

  it('refuses everything when no token is configured', () => {
    const closed = new AdminTokenGuard({ adminToken: undefined } as AppConfig);
    expect(() => closed.canActivate(context('Bearer ').ctx)).toThrow(UnauthorizedException);
    expect(() => closed.canActivate(context('Bearer \0').ctx)).toThrow(UnauthorizedException);
  });
});

describe(MetricsTokenGuard.name, () => {
  it('lets every scrape in when METRICS_TOKEN is not set', () => {
    const open = new MetricsTokenGuard({ metricsToken: undefined } as AppConfig);
    expect(open.canActivate(context(undefined).ctx)).toBe(true);
    expect(open.canActivate(context('Bearer whatever').ctx)).toBe(true);
  });

  describe('with METRICS_TOKEN set', () => {
    const guard = new MetricsTokenGuard({ metricsToken: METRICS_TOKEN, adminToken: ADMIN_TOKEN } as AppConfig);

    it('lets the bearer token in', () => {
      expect(guard.canActivate(context(`Bearer ${METRICS_TOKEN}`).ctx)).toBe(true);
    });

    it.each([
      [undefined, 'Send Authorization: Bearer <METRICS_TOKEN>'],
      [`Basic ${METRICS_TOKEN}`, 'Send Authorization: Bearer <METRICS_TOKEN>'],
      [`Bearer ${ADMIN_TOKEN}`, 'The bearer token is not valid'],
      [`Bearer ${METRICS_TOKEN}x`, 'The bearer token is not valid'],
    ])('refuses %j with 401 and its own challenge', (header, message) => {
      expectRefused(guard, header, message, 'places-cache metrics');
    });
  });
});
