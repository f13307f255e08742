import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { APP_VERSION, DEFAULT_USER_AGENT, loadConfig, PUBLIC_NOMINATIM_URL } from './configuration';
import { ConfigValidationError } from './env-parsers';
import { resolveRedisConnection } from './redis-url';

describe(resolveRedisConnection.name, () => {
  it('is null (in-memory mode) when nothing is set', () => {
    expect(resolveRedisConnection(undefined, undefined)).toBeNull();
    expect(resolveRedisConnection('  ', '')).toBeNull();
  });

  it('turns the docker-compose host form into redis://host:6379', () => {
    expect(resolveRedisConnection('redis', undefined)).toEqual({ url: 'redis://redis:6379', safeUrl: 'redis://redis:6379', tls: false });
  });

  it('keeps an explicit port of the host:port form', () => {
    expect(resolveRedisConnection('localhost:6380', undefined)?.url).toBe('redis://localhost:6380');
  });

  it('uses a full redis:// URL as given and masks its password', () => {
    const c = resolveRedisConnection('redis://user:s3cret@cache.example:7000/2', undefined);
    expect(c).toEqual({ url: 'redis://user:s3cret@cache.example:7000/2', safeUrl: 'redis://user:***@cache.example:7000/2', tls: false });
  });

  it('turns on TLS for the Heroku rediss:// form', () => {
    const c = resolveRedisConnection('rediss://:p4ss@ec2-1-2-3-4.compute-1.amazonaws.com:25061', undefined);
    expect(c?.tls).toBe(true);
    expect(c?.safeUrl).toBe('rediss://:***@ec2-1-2-3-4.compute-1.amazonaws.com:25061');
  });

  it('prefers REDIS_TLS_URL over REDIS_URL', () => {
    expect(resolveRedisConnection('redis://h:6379', 'rediss://h:6380')?.url).toBe('rediss://h:6380');
  });

  it.each([
    ['http://redis:6379', /redis:\/\/ or rediss:\/\//],
    ['redis host', /must be a host/],
    ['redis:99999', /must be a host|invalid port/],
    ['redis://h:6379/abc', /database must be a number/],
  ])('rejects %s', (value, message) => {
    expect(() => resolveRedisConnection(value, undefined)).toThrow(message);
  });
});

describe(loadConfig.name, () => {
  it('has defaults that work on a laptop', () => {
    const c = loadConfig({});
    expect(c.app.port).toBe(8080);
    expect(c.app.host).toBe('0.0.0.0');
    expect(c.redis.connection).toBeNull();
    expect(c.redis.opTimeoutMs).toBe(250);
    expect(c.cache.ttlSeconds).toBe(3600);
    expect(c.cache.staleIfErrorSeconds).toBe(86400);
    expect(c.nominatim.baseUrl).toBe(PUBLIC_NOMINATIM_URL);
    expect(c.nominatim.userAgent).toBe(DEFAULT_USER_AGENT);
    expect(c.nominatim.userAgentIsPlaceholder).toBe(true);
    expect(c.nominatim.isPublicServer).toBe(true);
    expect(c.nominatim.timeoutMs).toBe(10000);
    expect(c.nominatim.maxRps).toBe(1);
    expect(c.nominatim.queueMaxWaitMs).toBe(10000);
  });

  it('reads every variable it is given', () => {
    const c = loadConfig({
      PORT: '3000',
      REDIS_URL: 'redis',
      CACHE_TTL_SECONDS: '15',
      NOMINATIM_URL: 'http://127.0.0.1:7070/',
      NOMINATIM_USER_AGENT: 'acme-geo/2 (ops@acme.test)',
      NOMINATIM_EMAIL: 'ops@acme.test',
      UPSTREAM_TIMEOUT_MS: '2000',
      NOMINATIM_MAX_RPS: '0.5',
      LOG_LEVEL: 'WARN',
    });
    expect(c.app.port).toBe(3000);
    expect(c.redis.connection?.url).toBe('redis://redis:6379');
    expect(c.cache.ttlSeconds).toBe(15);
    expect(c.cache.statusTtlSeconds).toBe(10);
    expect(c.cache.emptyTtlSeconds).toBe(15);
    expect(c.nominatim.baseUrl).toBe('http://127.0.0.1:7070');
    expect(c.nominatim.isPublicServer).toBe(false);
    expect(c.nominatim.userAgentIsPlaceholder).toBe(false);
    expect(c.nominatim.email).toBe('ops@acme.test');
    expect(c.nominatim.maxRps).toBe(0.5);
    expect(c.app.logLevel).toBe('warn');
  });

  it('stops with one message naming every bad variable and what it accepts', () => {
    let error: unknown;
    try {
      loadConfig({ PORT: 'eighty', CACHE_TTL_SECONDS: '-1', REDIS_URL: 'ftp://x', NOMINATIM_URL: 'nominatim', LOG_LEVEL: 'loud' });
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(ConfigValidationError);
    const message = (error as Error).message;
    expect(message).toMatch(/^Invalid configuration: /);
    expect(message).toContain('PORT must be a whole number from 0 to 65535 (got "eighty")');
    expect(message).toContain('CACHE_TTL_SECONDS must be a whole number');
    expect(message).toContain('REDIS_URL must use redis:// or rediss://');
    expect(message).toContain('NOMINATIM_URL must be an http:// or https:// URL');
    expect(message).toContain('LOG_LEVEL must be one of fatal, error, warn, info, debug, trace, silent');
  });

  it('takes ADMIN_TOKEN and METRICS_TOKEN of at least 16 characters, and neither by default', () => {
    expect(loadConfig({}).app).toMatchObject({ adminToken: undefined, metricsToken: undefined });
    const c = loadConfig({ ADMIN_TOKEN: 'a'.repeat(16), METRICS_TOKEN: 'm'.repeat(16) });
    expect(c.app).toMatchObject({ adminToken: 'a'.repeat(16), metricsToken: 'm'.repeat(16) });
    expect(() => loadConfig({ METRICS_TOKEN: 'short' })).toThrow('METRICS_TOKEN must be at least 16 characters when set');
    expect(() => loadConfig({ ADMIN_TOKEN: 'short', METRICS_TOKEN: 'short' })).toThrow(
      /ADMIN_TOKEN must be at least 16 characters when set.*METRICS_TOKEN must be at least 16 characters when set/,
    );
  });

  it('takes CORS_ORIGINS as * or a list of origins, exactly as browsers send them in Origin', () => {
    expect(loadConfig({}).app.corsOrigins).toBe('*');
    expect(loadConfig({ CORS_ORIGINS: ' * ' }).app.corsOrigins).toBe('*');
    expect(loadConfig({ CORS_ORIGINS: 'https://app.example, http://localhost:3000,https://[::1]:8443,capacitor://localhost' }).app.corsOrigins).toEqual([
      'https://app.example',
      'http://localhost:3000',
      'https://[::1]:8443',
      'capacitor://localhost',
    ]);
  });

  it.each([
    // The cors middleware compares Origin as a string: these would never match one, and every browser client would fail.
    ['https://app.example/', 'CORS_ORIGINS entry "https://app.example/" is not an origin as browsers send it: write https://app.example'],
    ['https://App.Example:443', 'CORS_ORIGINS entry "https://App.Example:443" is not an origin as browsers send it: write https://app.example'],
    ['https://app.example/maps', 'CORS_ORIGINS entry "https://app.example/maps" is not an origin as browsers send it: write https://app.example'],
    ['app.example', 'CORS_ORIGINS entry "app.example" is not an origin: scheme://host[:port], e.g. https://app.example'],
    ['null', 'CORS_ORIGINS entry "null" is not an origin: scheme://host[:port], e.g. https://app.example'],
    ['https://a.example,*', 'CORS_ORIGINS: * allows every origin on its own, not in a list'],
    // No browser sends a * in Origin: a pattern would silently refuse every client it was meant for.
    ['https://*.app.example', 'CORS_ORIGINS entry "https://*.app.example": patterns are not supported; list each origin (scheme://host[:port])'],
    ['http://localhost:*', 'CORS_ORIGINS entry "http://localhost:*": patterns are not supported; list each origin (scheme://host[:port])'],
    [' , ', 'CORS_ORIGINS must be * or a comma-separated list of origins'],
  ])('refuses CORS_ORIGINS=%j', (value, message) => {
    expect(() => loadConfig({ CORS_ORIGINS: value })).toThrow(`Invalid configuration: ${message}`);
  });

  it('never puts the Redis password into its error message', () => {
    expect(() => loadConfig({ REDIS_URL: 'redis://:hunter2@h:6379/x' })).toThrow(/database must be a number/);
    expect(() => loadConfig({ REDIS_URL: 'redis://:hunter2@h:6379/x' })).not.toThrow(/hunter2/);
  });

  it.each([
    // URLs that do not parse, so their password field cannot be masked: a scheme typo, no scheme.
    [{ REDIS_URL: 'redis:/:hunter2@cache.example:6379' }, 'REDIS_URL must be a host, host:port, redis://… or rediss://… URL (got "redis:/***@cache.example:6379")'],
    [{ REDIS_URL: 'ops:hunter2@cache.example:6379' }, 'REDIS_URL must be a host, host:port, redis://… or rediss://… URL (got "ops:***@cache.example:6379")'],
    [{ REDIS_TLS_URL: 'rediss//:hunt@er2@cache.example' }, 'REDIS_TLS_URL must be a host, host:port, redis://… or rediss://… URL (got "***@cache.example")'],
    [{ REDIS_CLUSTER_NODES: 'redis://:hunter2@a:7000,:hunter2@b' }, 'REDIS_CLUSTER_NODES entry 2: must be a host, host:port, redis://… or rediss://… URL (got "***@b")'],
    [{ NOMINATIM_URL: 'ftp://ops:hunter2@nominatim.example' }, 'NOMINATIM_URL must be an http:// or https:// URL (got "ftp://***@nominatim.example")'],
    [{ NOMINATIM_URL: 'https://ops:hunter2@nominatim.example,' }, 'NOMINATIM_URL must be one URL or a comma-separated list of at most 8 (got "https://***@nominatim.example,")'],
  ])('never echoes the credentials of a URL it cannot parse: %j', (env, message) => {
    expect(() => loadConfig(env)).toThrow(`Invalid configuration: ${message}`);
  });

  it("sizes the fill lock's lease (and the wait for another instance's fill) for a fail-over through every upstream", () => {
    const one = loadConfig({ UPSTREAM_TIMEOUT_MS: '2000', UPSTREAM_QUEUE_MAX_WAIT_MS: '500' });
    expect([one.nominatim.fillLeaseMs, one.cache.fillWaitMs]).toEqual([3500, 3500]);
    const three = loadConfig({ NOMINATIM_URL: 'http://a:8080,http://b:8080,http://c:8080', UPSTREAM_TIMEOUT_MS: '2000', UPSTREAM_QUEUE_MAX_WAIT_MS: '500' });
    expect([three.nominatim.fillLeaseMs, three.cache.fillWaitMs]).toEqual([8500, 8500]);
  });

  it('takes several upstreams in order of preference, with one rate for all or one each', () => {
    const one = loadConfig({ NOMINATIM_URL: 'http://own:8080/, https://nominatim.openstreetmap.org', NOMINATIM_MAX_RPS: '5' });
    expect(one.nominatim.upstreams).toEqual([
      { baseUrl: 'http://own:8080', host: 'own:8080', maxRps: 5 },
      { baseUrl: 'https://nominatim.openstreetmap.org', host: 'nominatim.openstreetmap.org', maxRps: 5 },
    ]);
    expect(one.nominatim.baseUrl).toBe('http://own:8080');
    expect(one.nominatim.isPublicServer).toBe(true);
    expect(one.nominatim.backoffMaxMs).toBe(30_000);
    const each = loadConfig({ NOMINATIM_URL: 'http://own:8080,https://nominatim.openstreetmap.org', NOMINATIM_MAX_RPS: '50,1' });
    expect(each.nominatim.upstreams.map((u) => u.maxRps)).toEqual([50, 1]);
    expect(loadConfig({}).nominatim.upstreams).toEqual([{ baseUrl: 'https://nominatim.openstreetmap.org', host: 'nominatim.openstreetmap.org', maxRps: 1 }]);
  });

  it('refuses a rate list of another length, an empty entry, a bad URL or a host listed twice', () => {
    expect(() => loadConfig({ NOMINATIM_URL: 'http://a,http://b', NOMINATIM_MAX_RPS: '1,2,3' })).toThrow(
      'NOMINATIM_MAX_RPS must be one number or one per NOMINATIM_URL entry (2)',
    );
    expect(() => loadConfig({ NOMINATIM_URL: 'http://a,,http://b' })).toThrow('NOMINATIM_URL must be one URL or a comma-separated list');
    expect(() => loadConfig({ NOMINATIM_URL: 'http://a,ftp://b' })).toThrow('NOMINATIM_URL must be an http:// or https:// URL (got "ftp://b")');
    expect(() => loadConfig({ NOMINATIM_URL: 'http://a/x,http://a/y' })).toThrow('NOMINATIM_URL lists a twice');
    expect(() => loadConfig({ NOMINATIM_URL: 'http://a,http://b', NOMINATIM_MAX_RPS: '1,0' })).toThrow('NOMINATIM_MAX_RPS must be a number from 0.01 to 1000 (got "0")');
  });

  it('keeps APP_VERSION in step with package.json', () => {
    const pkg = JSON.parse(readFileSync(join(__dirname, '../../package.json'), 'utf8')) as { version: string };
    expect(APP_VERSION).toBe(pkg.version);
  });

  it("labels the image with package.json's version (OCI labels in the Dockerfile)", () => {
    const pkg = JSON.parse(readFileSync(join(__dirname, '../../package.json'), 'utf8')) as { version: string; license: string };
    const dockerfile = readFileSync(join(__dirname, '../../Dockerfile'), 'utf8');
    expect(dockerfile).toContain(`org.opencontainers.image.version="${pkg.version}"`);
    expect(dockerfile).toContain(`org.opencontainers.image.licenses="${pkg.license}"`);
  });

  it("takes docker-compose.yml's placeholder User-Agent for one (the public server's warning fires)", () => {
    const compose = readFileSync(join(__dirname, '../../docker-compose.yml'), 'utf8');
    const placeholders = [...compose.matchAll(/NOMINATIM_USER_AGENT: \$\{NOMINATIM_USER_AGENT:-([^}]+)\}/g)].map((m) => m[1]);
    expect(placeholders.length).toBeGreaterThan(0);
    for (const ua of placeholders) expect(loadConfig({ NOMINATIM_USER_AGENT: ua }).nominatim.userAgentIsPlaceholder).toBe(true);
    expect(loadConfig({ NOMINATIM_USER_AGENT: 'acme-geo/2 (ops@acme.test)' }).nominatim.userAgentIsPlaceholder).toBe(false);
  });

  it("takes the default User-Agent written out (an uncommented .env.example line) as the default (the public server's warning fires)", () => {
    expect(loadConfig({ NOMINATIM_USER_AGENT: DEFAULT_USER_AGENT }).nominatim.userAgentIsPlaceholder).toBe(true);
  });
});
