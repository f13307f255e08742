import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadConfig } from '../src/config/configuration';
import { spawnApp } from './support/app-process';
import { BuiltApp, buildApp } from './support/build-app';
import { configVariables } from './support/config-variables';
import { freePort } from './support/redis-server';

/*
 * README, "Configuration": "All settings are environment variables, validated at start-up: a bad value
 * stops the process with one message naming the variable and what it accepts."
 */

jest.setTimeout(60_000);

/** The variables of the README's configuration table, in its order. */
function readmeVariables(): string[] {
  const readme = readFileSync(join(__dirname, '..', 'README.md'), 'utf8');
  const section = readme.slice(readme.indexOf('## Configuration'), readme.indexOf('\n## ', readme.indexOf('## Configuration') + 1));
  return [...section.matchAll(/^\| `([A-Z0-9_]+)` \|/gm)].map((m) => m[1]);
}

/** The README table's Default column: each variable with its first `value`, or undefined for "unset". */
function readmeDefaults(): Array<[name: string, value: string | undefined]> {
  const readme = readFileSync(join(__dirname, '..', 'README.md'), 'utf8');
  const section = readme.slice(readme.indexOf('## Configuration'), readme.indexOf('\n## ', readme.indexOf('## Configuration') + 1));
  return [...section.matchAll(/^\| `([A-Z0-9_]+)` \| (?:`([^`]*)`|unset)/gm)].map((m) => [m[1], m[2]]);
}

/** What .env.example says each variable defaults to (its commented-out value, when it has one). */
function exampleDefaults(): Array<[name: string, value: string]> {
  const example = readFileSync(join(__dirname, '..', '.env.example'), 'utf8');
  return [...example.matchAll(/^# ?([A-Z0-9_]+)=(.+)$/gm)].map((m) => [m[1], m[2]]);
}

/** Variables that take any text: nothing to refuse. */
const ANY_TEXT = ['HOST'];

/** A bad value for every other variable, and what the message must say it accepts. */
const BAD: Record<string, [value: string, accepts: string]> = {
  PORT: ['65536', 'PORT must be a whole number from 0 to 65535 (got "65536")'],
  REDIS_URL: ['http://redis:6379', 'REDIS_URL must use redis:// or rediss://'],
  REDIS_TLS_URL: ['tls.example:notaport', 'REDIS_TLS_URL must be a host, host:port, redis://… or rediss://… URL (got "tls.example:notaport")'],
  REDIS_CLUSTER_NODES: ['redis://a:7000,http://b:7001', 'REDIS_CLUSTER_NODES entry 2: must use redis:// or rediss://'],
  REDIS_OP_TIMEOUT_MS: ['5', 'REDIS_OP_TIMEOUT_MS must be a whole number from 10 to 10000 (got "5")'],
  CACHE_TTL_SECONDS: ['0', 'CACHE_TTL_SECONDS must be a whole number from 1 to'],
  STATUS_TTL_SECONDS: ['ten', 'STATUS_TTL_SECONDS must be a whole number from 1 to 86400 (got "ten")'],
  EMPTY_TTL_SECONDS: ['-5', 'EMPTY_TTL_SECONDS must be a whole number from 1 to'],
  STALE_IF_ERROR_SECONDS: ['1d', 'STALE_IF_ERROR_SECONDS must be a whole number from 0 to 2592000 (got "1d")'],
  STALE_WHILE_REVALIDATE_SECONDS: ['1.5', 'STALE_WHILE_REVALIDATE_SECONDS must be a whole number from 0 to 2592000 (got "1.5")'],
  L1_MAX_BYTES: ['64MiB', 'L1_MAX_BYTES must be a whole number from 0 to'],
  COMPRESS_MIN_BYTES: ['-1', 'COMPRESS_MIN_BYTES must be a whole number from 0 to'],
  REVERSE_SNAP_METERS: ['-5', 'REVERSE_SNAP_METERS must be a number from 0 to 100000 (got "-5")'],
  CLIENT_CACHE_CONTROL: ['always', 'CLIENT_CACHE_CONTROL must be one of'],
  NOMINATIM_URL: ['nominatim.example', 'NOMINATIM_URL must be an http:// or https:// URL (got "nominatim.example")'],
  NOMINATIM_USER_AGENT: ['my-app/1.0\r\nX-Injected: 1', 'NOMINATIM_USER_AGENT must be one line'],
  NOMINATIM_EMAIL: ['ops at example.org', 'NOMINATIM_EMAIL must be an e-mail address (got "ops at example.org")'],
  NOMINATIM_MAX_RPS: ['0', 'NOMINATIM_MAX_RPS must be a number from 0.01 to 1000 (got "0")'],
  UPSTREAM_BACKOFF_MAX_SECONDS: ['0', 'UPSTREAM_BACKOFF_MAX_SECONDS must be a whole number from 1 to 3600 (got "0")'],
  UPSTREAM_TIMEOUT_MS: ['50', 'UPSTREAM_TIMEOUT_MS must be a whole number from 100 to 25000 (got "50")'],
  UPSTREAM_QUEUE_MAX_WAIT_MS: ['30000', 'UPSTREAM_QUEUE_MAX_WAIT_MS must be a whole number from 0 to 25000 (got "30000")'],
  RATE_LIMIT_ENABLED: ['sometimes', 'RATE_LIMIT_ENABLED must be true or false (got "sometimes")'],
  RATE_LIMIT_WINDOW_SECONDS: ['0', 'RATE_LIMIT_WINDOW_SECONDS must be a whole number from 1 to 3600 (got "0")'],
  RATE_LIMIT_MISSES: ['0', 'RATE_LIMIT_MISSES must be a whole number from 1 to 1000000 (got "0")'],
  RATE_LIMIT_HITS: ['lots', 'RATE_LIMIT_HITS must be a whole number from 1 to 100000000 (got "lots")'],
  TRUST_PROXY: ['heroku', 'TRUST_PROXY must be true or false (got "heroku")'],
  ADMIN_TOKEN: ['short-token', 'ADMIN_TOKEN must be at least 16 characters when set'],
  METRICS_TOKEN: ['short-token', 'METRICS_TOKEN must be at least 16 characters when set'],
  CORS_ORIGINS: ['https://app.example/', 'CORS_ORIGINS entry "https://app.example/" is not an origin as browsers send it: write https://app.example'],
  LOG_LEVEL: ['loud', 'LOG_LEVEL must be one of fatal, error, warn, info, debug, trace, silent (got "loud")'],
  MAX_URL_BYTES: ['100', 'MAX_URL_BYTES must be a whole number from 256 to 65536 (got "100")'],
  SHUTDOWN_TIMEOUT_MS: ['30000', 'SHUTDOWN_TIMEOUT_MS must be a whole number from 0 to 25000 (got "30000")'],
  UPSTREAM_MAX_BYTES: ['2MiB', 'UPSTREAM_MAX_BYTES must be a whole number from 1024 to 268435456 (got "2MiB")'],
  RATE_LIMIT_HIT_CLIENTS: ['10', 'RATE_LIMIT_HIT_CLIENTS must be a whole number from 100 to 1000000 (got "10")'],
  HEADERS_TIMEOUT_MS: ['0', 'HEADERS_TIMEOUT_MS must be a whole number from 100 to 120000 (got "0")'],
  REQUEST_TIMEOUT_MS: ['50', 'REQUEST_TIMEOUT_MS must be a whole number from 100 to 600000 (got "50")'],
  KEEP_ALIVE_TIMEOUT_MS: ['5s', 'KEEP_ALIVE_TIMEOUT_MS must be a whole number from 1000 to 600000 (got "5s")'],
  WEB_CONCURRENCY: ['0', 'WEB_CONCURRENCY must be a whole number from 1 to 64 (got "0")'],
  FLEET_INSTANCES: ['2 dynos', 'FLEET_INSTANCES must be a whole number from 1 to 1000 (got "2 dynos")'],
};

function problemsOf(env: Record<string, string>): string {
  try {
    loadConfig(env);
  } catch (e) {
    return (e as Error).message;
  }
  return 'accepted';
}

describe('configuration: what the README table promises', () => {
  it('documents exactly the variables the configuration reads', () => {
    expect([...readmeVariables()].sort()).toEqual(configVariables());
  });

  it('.env.example lists exactly those variables, each with its default commented out', () => {
    const example = readFileSync(join(__dirname, '..', '.env.example'), 'utf8');
    const listed = [...example.matchAll(/^# ?([A-Z0-9_]+)=/gm)].map((m) => m[1]);
    expect([...listed].sort()).toEqual(configVariables());
    // Nothing is set by copying it: every line is a comment or blank.
    expect(example.split('\n').filter((l) => l.trim() !== '' && !l.startsWith('#'))).toEqual([]);
  });

  it('gives every variable of the table a default: a value or unset', () => {
    expect(readmeDefaults().map(([name]) => name)).toEqual(readmeVariables());
  });

  // Setting a variable to its documented default must change nothing: else the table (or a copied
  // .env.example line) describes another service than the one that runs.
  it.each(readmeDefaults().filter((d): d is [string, string] => d[1] !== undefined))(
    'runs with %s=%s (its README default) exactly as with it unset',
    (name, value) => {
      expect(loadConfig({ [name]: value })).toEqual(loadConfig({}));
    },
  );

  it.each(exampleDefaults())('runs with %s=%s (its .env.example default) exactly as with it unset', (name, value) => {
    expect(loadConfig({ [name]: value })).toEqual(loadConfig({}));
  });

  it('caps the STATUS_TTL_SECONDS and EMPTY_TTL_SECONDS defaults at CACHE_TTL_SECONDS (≤ TTL)', () => {
    const { cache } = loadConfig({ CACHE_TTL_SECONDS: '5' });
    expect([cache.statusTtlSeconds, cache.emptyTtlSeconds]).toEqual([5, 5]);
  });

  it('shares the upstream budget among FLEET_INSTANCES × WEB_CONCURRENCY processes when Redis is down', () => {
    expect(loadConfig({}).nominatim.pacingProcesses).toBe(1);
    expect(loadConfig({ FLEET_INSTANCES: '2', WEB_CONCURRENCY: '3', REDIS_URL: 'redis://127.0.0.1:6379' }).nominatim.pacingProcesses).toBe(6);
  });

  it('refuses WEB_CONCURRENCY above 1 without Redis, naming both variables', () => {
    expect(problemsOf({ WEB_CONCURRENCY: '3' })).toBe(
      'Invalid configuration: WEB_CONCURRENCY=3 needs REDIS_URL (or REDIS_TLS_URL, or REDIS_CLUSTER_NODES): the workers share the upstream pacer and rate limits through Redis',
    );
    expect(problemsOf({ WEB_CONCURRENCY: '3', REDIS_URL: 'redis://127.0.0.1:6379' })).toBe('accepted');
    expect(problemsOf({ WEB_CONCURRENCY: '3', REDIS_CLUSTER_NODES: 'redis://127.0.0.1:7000,redis://127.0.0.1:7001' })).toBe('accepted');
    expect(problemsOf({ WEB_CONCURRENCY: '3', REDIS_TLS_URL: 'rediss://:pw@127.0.0.1:6380' })).toBe('accepted');
    expect(problemsOf({ WEB_CONCURRENCY: '1' })).toBe('accepted');
  });

  it('refuses a REQUEST_TIMEOUT_MS below HEADERS_TIMEOUT_MS (the table: ≥ HEADERS_TIMEOUT_MS), and takes it equal', () => {
    expect(problemsOf({ HEADERS_TIMEOUT_MS: '20000', REQUEST_TIMEOUT_MS: '15000' })).toBe('Invalid configuration: REQUEST_TIMEOUT_MS must be at least HEADERS_TIMEOUT_MS');
    expect(problemsOf({ HEADERS_TIMEOUT_MS: '20000', REQUEST_TIMEOUT_MS: '20000' })).toBe('accepted');
  });

  it('refuses an ADMIN_TOKEN or METRICS_TOKEN that cannot be sent as one bearer token (a space, a tab, non-ASCII)', () => {
    for (const name of ['ADMIN_TOKEN', 'METRICS_TOKEN']) {
      for (const token of ['correct horse battery staple', 'sixteen-chars-and\ttab', 'sixteen-characters-€']) {
        expect(problemsOf({ [name]: token })).toBe(`Invalid configuration: ${name} must be visible ASCII characters with no space (it is sent as Authorization: Bearer <${name}>)`);
      }
      expect(problemsOf({ [name]: 'Abc.123_~+/=-!#$%&' })).toBe('accepted');
    }
  });

  it('has a bad value here for every variable that is not free text', () => {
    expect(Object.keys(BAD).sort()).toEqual(configVariables().filter((name) => !ANY_TEXT.includes(name)));
  });

  it.each(Object.entries(BAD))('refuses a bad %s on its own, naming it and what it accepts', (name, [value, accepts]) => {
    const message = problemsOf({ [name]: value });
    expect(message).toMatch(/^Invalid configuration: /);
    expect(message).toContain(accepts);
    // One problem, this one: nothing else is blamed.
    expect(message.split('; ')).toHaveLength(1);
  });
});

describe('configuration: a bad value stops the process (node main.js)', () => {
  let build: BuiltApp;

  beforeAll(async () => {
    build = await buildApp();
  });

  afterAll(() => build?.remove());

  /** Runs the app with only `env` (over spawnApp's loopback defaults) until it exits. */
  async function run(env: Record<string, string>): Promise<{ code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }> {
    const app = spawnApp(build, { env });
    // A process that did not stop would still be listening: the test times out on it, and the
    // leftover is killed here rather than left running.
    const timer = setTimeout(() => void app.stop(), 30_000);
    try {
      const { code, signal } = await app.exited;
      return { code, signal, stdout: app.stdout(), stderr: app.stderr() };
    } finally {
      clearTimeout(timer);
    }
  }

  it('exits 1 with one line on stderr naming every bad variable and what it accepts, before starting anything', async () => {
    const env = Object.fromEntries(Object.entries(BAD).map(([name, [value]]) => [name, value]));
    // REDIS_TLS_URL wins over REDIS_URL (and so hides it): REDIS_URL is tried alone below.
    delete env.REDIS_TLS_URL;
    env.PORT = String(await freePort()); // the one good value: a port it would have listened on
    const { code, signal, stdout, stderr } = await run(env);
    expect({ code, signal }).toEqual({ code: 1, signal: null });
    expect(stdout).toBe('');
    const lines = stderr.split('\n').filter((l) => l !== '');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/^Invalid configuration: /);
    for (const [name, [, accepts]] of Object.entries(BAD)) {
      if (name === 'REDIS_TLS_URL' || name === 'PORT') continue;
      expect(lines[0]).toContain(accepts);
    }
  });

  it.each([
    ['REDIS_URL', 'redis://:hunter2@cache.example:6379/zero', 'REDIS_URL database must be a number (got "zero")'],
    ['REDIS_TLS_URL', BAD.REDIS_TLS_URL[0], BAD.REDIS_TLS_URL[1]],
    ['PORT', BAD.PORT[0], BAD.PORT[1]],
    // A URL that does not parse has no password field to mask: all before its last @ is left out.
    ['REDIS_URL', 'redis:/:hunter2@cache.example:6379', 'REDIS_URL must be a host, host:port, redis://… or rediss://… URL (got "redis:/***@cache.example:6379")'],
    ['NOMINATIM_URL', 'ftp://ops:hunter2@nominatim.example', 'NOMINATIM_URL must be an http:// or https:// URL (got "ftp://***@nominatim.example")'],
  ])('exits 1 on a bad %s alone', async (name, value, accepts) => {
    const { code, signal, stdout, stderr } = await run({ [name]: value });
    expect({ code, signal, stdout }).toEqual({ code: 1, signal: null, stdout: '' });
    expect(stderr).toBe(`Invalid configuration: ${accepts}\n`);
    expect(stderr).not.toContain('hunter2');
  });

  it('exits 1 naming both when REDIS_URL and REDIS_CLUSTER_NODES are set', async () => {
    const { code, stdout, stderr } = await run({ REDIS_URL: 'redis://:hunter2@one:6379', REDIS_CLUSTER_NODES: 'redis://:hunter2@c1:7000' });
    expect({ code, stdout }).toEqual({ code: 1, stdout: '' });
    expect(stderr).toBe(
      'Invalid configuration: REDIS_CLUSTER_NODES and REDIS_URL are both set: set REDIS_CLUSTER_NODES for a Redis Cluster or REDIS_URL for one Redis, not both\n',
    );
  });
});
