import { spawn } from 'node:child_process';
import { copyFileSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
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

  it('npm start: a SIGTERM sent to npm alone (as a process manager sends it) drains the service and npm exits 0', async () => {
    // npm runs the script through sh; sh does not pass the signal on, so it must not stay between npm and node.
    copyFileSync(join(__dirname, '..', 'package.json'), join(dir, 'package.json'));
    symlinkSync(dirname(build.main), join(dir, 'dist'));
    const port = await freePort();
    const url = `http://127.0.0.1:${port}`;
    // Its own process group, so that whatever a failing run leaves behind is killed with it.
    const npm = spawn('npm', ['start', '--silent'], {
      cwd: dir,
      detached: true,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: {
        PATH: process.env.PATH ?? '',
        ...build.env,
        HOST: '127.0.0.1',
        PORT: String(port),
        NOMINATIM_URL: upstream.url,
        NOMINATIM_USER_AGENT: 'npm-start/1.0 (t@places-cache.test)',
        RATE_LIMIT_ENABLED: 'false',
        npm_config_update_notifier: 'false',
      },
    });
    let output = '';
    npm.stdout.on('data', (d: Buffer) => (output += d.toString()));
    npm.stderr.on('data', (d: Buffer) => (output += d.toString()));
    const exited = new Promise<number | string | null>((resolve) => npm.once('exit', (code, signal) => resolve(code ?? signal)));
    try {
      const deadline = Date.now() + 60_000;
      while (!(await fetch(`${url}/health/live`).then((r) => r.ok, () => false))) {
        if (Date.now() > deadline || npm.exitCode !== null) throw new Error(`npm start did not serve: ${output}`);
        await new Promise((r) => setTimeout(r, 200));
      }
      upstream.latencyMs = 1500;
      const inFlight = fetch(`${url}/search?q=berlin&format=json`);
      await new Promise((r) => setTimeout(r, 300));
      process.kill(npm.pid!, 'SIGTERM');
      expect((await inFlight).status).toBe(200);
      await expect(exited).resolves.toBe(0);
      expect(output).toContain('"signal":"SIGTERM","msg":"Exiting with code 0"');
      // Nothing left serving the port.
      await expect(fetch(`${url}/health/live`).then(() => 'answered', () => 'refused')).resolves.toBe('refused');
    } finally {
      try {
        process.kill(-npm.pid!, 'SIGKILL');
      } catch {
        // the group has ended
      }
    }
  });
});
