import { ExecutionContext, UnauthorizedException } from '@nestjs/common';
import type { AppConfig } from '../config/configuration';
import { MetricsTokenGuard } from './metrics-token.guard';

const TOKEN = 'a-long-enough-metrics-token';

function context(authorization: string | undefined): { ctx: ExecutionContext; headers: Map<string, string> } {
  const headers = new Map<string, string>();
  const req = { headers: authorization === undefined ? {} : { authorization } };
  const res = { setHeader: (name: string, value: string) => headers.set(name, value) };
  const ctx = { switchToHttp: () => ({ getRequest: () => req, getResponse: () => res }) } as unknown as ExecutionContext;
  return { ctx, headers };
}

function refusal(guard: MetricsTokenGuard, header: string | undefined): { error: unknown; headers: Map<string, string> } {
  const { ctx, headers } = context(header);
  try {
    guard.canActivate(ctx);
  } catch (error) {
    return { error, headers };
  }
  return { error: undefined, headers };
}

describe(MetricsTokenGuard.name, () => {
  it('lets every scrape in when METRICS_TOKEN is not set', () => {
    const open = new MetricsTokenGuard({ metricsToken: undefined } as AppConfig);
    expect(open.canActivate(context(undefined).ctx)).toBe(true);
    expect(open.canActivate(context('Bearer whatever').ctx)).toBe(true);
  });

  describe('with METRICS_TOKEN set', () => {
    const guard = new MetricsTokenGuard({ metricsToken: TOKEN, adminToken: 'another-long-admin-token' } as AppConfig);

    it('lets the bearer token in', () => {
      expect(guard.canActivate(context(`Bearer ${TOKEN}`).ctx)).toBe(true);
    });

    it.each([
      [undefined, 'Send Authorization: Bearer <METRICS_TOKEN>'],
      [`Basic ${TOKEN}`, 'Send Authorization: Bearer <METRICS_TOKEN>'],
      ['Bearer another-long-admin-token', 'The bearer token is not valid'],
      [`Bearer ${TOKEN}x`, 'The bearer token is not valid'],
    ])('refuses %j with 401 and its own challenge', (header, message) => {
      const { error, headers } = refusal(guard, header);
      expect(error).toBeInstanceOf(UnauthorizedException);
      expect((error as UnauthorizedException).getResponse()).toEqual({ statusCode: 401, error: 'Unauthorized', message });
      expect(headers.get('WWW-Authenticate')).toBe('Bearer realm="places-cache metrics"');
    });
  });
});
