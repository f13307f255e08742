import { startApp, startE2e } from './app-harness';
import { configVariables } from './config-variables';
import { FakeNominatim } from './fake-nominatim';
import { stopLeftovers } from './leftovers';

describe(startApp.name, () => {
  let fake: FakeNominatim;

  beforeAll(async () => {
    fake = new FakeNominatim();
    await fake.start();
  });

  afterAll(() => fake.stop());

  it('builds each app from what the test gives it only: no configuration variable leaks in from the environment', async () => {
    const names = configVariables();
    // What the README's table lists, so the recorder does see the variables loadConfig reads.
    expect(names).toEqual(expect.arrayContaining(['METRICS_TOKEN', 'ADMIN_TOKEN', 'REDIS_URL', 'REDIS_TLS_URL', 'TRUST_PROXY', 'PORT']));
    const saved = new Map(names.map((name) => [name, process.env[name]]));
    // Two lines: a value every variable that validates anything refuses (a leak would fail the start-up).
    for (const name of names) process.env[name] = 'leaked\nvalue';
    process.env.CORS_ORIGINS = 'https://leaked.example';
    try {
      const svc = await startApp({ NOMINATIM_URL: fake.url });
      try {
        // METRICS_TOKEN did not come along: /metrics is open.
        expect((await fetch(`${svc.url}/metrics`)).status).toBe(200);
        // CORS_ORIGINS did not either (a valid list, so only its effect shows it).
        const res = await fetch(`${svc.url}/health/live`, { headers: { Origin: 'https://elsewhere.example' } });
        expect(res.headers.get('access-control-allow-origin')).toBe('*');
      } finally {
        await svc.close();
      }
      // And the environment is as the test left it.
      for (const name of names) expect([name, process.env[name]]).toEqual([name, name === 'CORS_ORIGINS' ? 'https://leaked.example' : 'leaked\nvalue']);
    } finally {
      for (const [name, value] of saved) {
        if (value === undefined) delete process.env[name];
        else process.env[name] = value;
      }
    }
  });
});

describe(startE2e.name, () => {
  it('stop() closes its apps, the probe, the fake and the redis-server: nothing is left for the leftovers', async () => {
    const e2e = await startE2e({ probe: true });
    const svc = await e2e.startApp();
    expect((await fetch(`${svc.url}/health/ready`)).status).toBe(200);
    expect(await e2e.probe.ping()).toBe('PONG');
    await e2e.stop();
    expect(await stopLeftovers()).toEqual([]);
    await expect(e2e.redis.ping(1000)).rejects.toThrow();
  });

  it('what a failed test did not stop is stopped by the leftovers: fake, apps, probe, then redis-server', async () => {
    const e2e = await startE2e({ probe: true });
    await e2e.startApp();
    expect(await stopLeftovers()).toEqual([
      expect.stringMatching(/^the fake Nominatim on port \d+$/),
      'an app',
      'the Redis probe',
      expect.stringMatching(/^redis-server on port \d+$/),
    ]);
    expect(e2e.probe.isOpen).toBe(false);
  });
});
