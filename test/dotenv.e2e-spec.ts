import { ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
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

const ROOT = join(__dirname, '..');

/** package.json's start script, split into node's arguments, with `dist/main.js` replaced by `main`. */
function startCommand(main: string): string[] {
  const script = (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { scripts: Record<string, string> }).scripts.start;
  const words = script.split(/\s+/);
  expect(words[0]).toBe('node');
  expect(words.at(-1)).toBe('dist/main.js');
  return [...words.slice(1, -1), main];
}

async function waitForLive(url: string, child: ChildProcess, output: () => string): Promise<void> {
  for (;;) {
    if (child.exitCode !== null) throw new Error(`the app exited with ${child.exitCode}:\n${output()}`);
    const ok = await fetch(`${url}/health/live`).then((r) => r.ok, () => false);
    if (ok) return;
    await new Promise((r) => setTimeout(r, 100));
  }
}

describe('npm start and .env (e2e)', () => {
  let build: BuiltApp;
  let upstream: FakeNominatim;
  let dir: string;
  const running = new Set<ChildProcess>();

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

  afterEach(() => {
    for (const child of running) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    running.clear();
    rmSync(dir, { recursive: true, force: true });
    upstream.reset();
  });

  async function start(env: Record<string, string>): Promise<{ child: ChildProcess; output: () => string; exited: Promise<number | null> }> {
    const child = spawn(process.execPath, startCommand(build.main), {
      cwd: dir,
      env: { PATH: process.env.PATH ?? '', ...build.env, HOST: '127.0.0.1', RATE_LIMIT_ENABLED: 'false', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    running.add(child);
    let out = '';
    child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    return { child, output: () => out, exited };
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
    const app = await start({
      PORT: String(realPort),
      NOMINATIM_URL: upstream.url,
      NOMINATIM_USER_AGENT: 'from-environment/1.0 (env@places-cache.test)',
    });
    const url = `http://127.0.0.1:${realPort}`;
    await waitForLive(url, app.child, app.output);
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
    await expect(app.exited).resolves.toBe(0);
  });

  it('starts without a .env file', async () => {
    const port = await freePort();
    const app = await start({ PORT: String(port), NOMINATIM_URL: upstream.url, NOMINATIM_USER_AGENT: 'no-dotenv/1.0 (t@places-cache.test)' });
    await waitForLive(`http://127.0.0.1:${port}`, app.child, app.output);
    app.child.kill('SIGTERM');
    await expect(app.exited).resolves.toBe(0);
  });

  it('a bad value in .env stops the process with the usual one-line message', async () => {
    writeFileSync(join(dir, '.env'), 'CACHE_TTL_SECONDS=soon\n');
    const app = await start({ PORT: String(await freePort()) });
    await expect(app.exited).resolves.toBe(1);
    expect(app.output()).toBe('Invalid configuration: CACHE_TTL_SECONDS must be a whole number from 1 to 31536000 (got "soon")\n');
  });
});
