import { loadConfig } from '../config/configuration';
import { withCommandDefaults } from './cli-context';

describe(withCommandDefaults.name, () => {
  it('sets the command defaults where a variable is unset, empty or blank, as the service reads it', () => {
    for (const blank of [undefined, '', '  ']) {
      const env: Record<string, string | undefined> = { LOG_LEVEL: blank, REDIS_OP_TIMEOUT_MS: blank };
      withCommandDefaults(env);
      const config = loadConfig(env);
      expect([blank, config.app.logLevel, config.redis.opTimeoutMs]).toEqual([blank, 'error', 2000]);
    }
  });

  it('keeps what the operator set', () => {
    const env = { LOG_LEVEL: 'debug', REDIS_OP_TIMEOUT_MS: '300' };
    withCommandDefaults(env);
    expect(env).toEqual({ LOG_LEVEL: 'debug', REDIS_OP_TIMEOUT_MS: '300' });
  });
});
