import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AppProcess, npmStartFlags, spawnApp } from './support/app-process';
import { BuiltApp, buildApp } from './support/build-app';
import { FakeNominatim } from './support/fake-nominatim';
import { freePort } from './support/redis-server';

// The e2e project's testTimeout is not applied per project by Jest 30; these tests spawn processes and wait.
jest.setTimeout(90_000);

/*
 * README, Configuration: `npm start` reads `.env` from the working directory (npm runs scripts in the
 * project directory); variables of the real environment win over it. Run here as `npm start` runs it:
 * package.json's start command, with the test's build in place of dist/main.js, in a directory of its own.
 */

function waitForLive(app: AppProcess, url: string): Promise<void> {
  return app.until(() => fetch(`${url}/health/live`).then((r) => r.ok, () => false), 'GET /health/live', 60_000);
}

describe('npm start and .env (e2e)', () => {
  let build: BuiltApp;
  let upstream: FakeNominatim;
  let dir: string;
  const running = new Set<AppProcess>();

  beforeAll(async () => {
    build = await buildApp();
    upstream = new FakeNominatim();
    await upstream.start();
  });

  afterAll(async () => {
    await upstream?.stop();
    build?.remove();
  });

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'places-cache-dotenv-'));
  });

  afterEach(async () => {
    await Promise.all([...running].map((app) => app.stop()));
    running.clear();
    rmSync(dir, { recursive: true, force: true });
    upstream.reset();
  });

  function start(env: Record<string, string>): AppProcess {
    const app = spawnApp(build, { nodeFlags: npmStartFlags(), cwd: dir, env: { RATE_LIMIT_ENABLED: 'false', ...env } });
    running.add(app);
    return app;
  }

  it('reads .env, and a variable set in the real environment wins over the file', async () => {
    const [realPort, filePort] = [await freePort(), await freePort()];
    writeFileSync(
      join(dir, '.env'),
      [
        '# a comment, and a blank line',
        '',
        `PORT=${filePort}`,
        'NOMINATIM_USER_AGENT="from-dotenv/1.0 (dotenv@places-cache.test)"',
        'CACHE_TTL_SECONDS=123',
      ].join('\n'),
    );
    // NOMINATIM_URL comes from the real environment, so that even a start that ignored .env asks only the fake.
    const app = start({
      PORT: String(realPort),
      NOMINATIM_URL: upstream.url,
      NOMINATIM_USER_AGENT: 'from-environment/1.0 (env@places-cache.test)',
    });
    const url = `http://127.0.0.1:${realPort}`;
    await waitForLive(app, url);
    // The file's PORT lost to the real one.
    await expect(fetch(`http://127.0.0.1:${filePort}/health/live`).then(() => 'answered', () => 'refused')).resolves.toBe('refused');

    const res = await fetch(`${url}/search?q=berlin&format=json`);
    expect(res.status).toBe(200);
    expect(res.headers.get('x-cache')).toBe('MISS');
    expect(upstream.requests).toHaveLength(1);
    // From the file: the TTL it stored with (the default is 3600).
    expect(res.headers.get('cache-control')).toMatch(/^public, max-age=12[23]$/);
    // From the real environment, over the file's.
    expect(upstream.requests[0].userAgent).toBe('from-environment/1.0 (env@places-cache.test)');

    app.child.kill('SIGTERM');
    await expect(app.exited).resolves.toMatchObject({ code: 0 });
  });

  it('starts without a .env file', async () => {
    const port = await freePort();
    const app = start({ PORT: String(port), NOMINATIM_URL: upstream.url, NOMINATIM_USER_AGENT: 'no-dotenv/1.0 (t@places-cache.test)' });
    await waitForLive(app, `http://127.0.0.1:${port}`);
    app.child.kill('SIGTERM');
    await expect(app.exited).resolves.toMatchObject({ code: 0 });
  });

  it('a bad value in .env stops the process with the usual one-line message', async () => {
    writeFileSync(join(dir, '.env'), 'CACHE_TTL_SECONDS=soon\n');
    const app = start({ PORT: String(await freePort()) });
    await expect(app.exited).resolves.toMatchObject({ code: 1 });
    expect(app.output()).toBe('Invalid configuration: CACHE_TTL_SECONDS must be a whole number from 1 to 31536000 (got "soon")\n');
  });
});
