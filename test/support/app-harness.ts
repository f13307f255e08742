import type { NestExpressApplication } from '@nestjs/platform-express';
import type { AddressInfo } from 'node:net';
import pino, { type Logger } from 'pino';
import { createClient, type RedisClientType } from 'redis';
import { createApp } from '../../src/app.setup';
import { RedisConnectionService } from '../../src/cache/redis-connection.service';
import { setLogDestination } from '../../src/logging/app-logger';
import { APP_LOGGER } from '../../src/logging/logging.module';
import { TEST_USER_AGENT } from './app-process';
import { configVariables } from './config-variables';
import { FakeNominatim, type FakeNominatimOptions } from './fake-nominatim';
import { track } from './leftovers';
import { startRedis, type RedisProcess, type StartRedisOptions } from './redis-server';

/** One line the app logged (pino JSON), with its parsed fields. */
export interface LogLine {
  level: string;
  msg: string;
  context?: string;
  /** Date.now() when the line was written */
  at: number;
  raw: string;
}

export interface RunningApp {
  app: NestExpressApplication;
  url: string;
  /** What the app logged since it started (at its LOG_LEVEL), when started with `captureLogs`; else empty. */
  logs: LogLine[];
  close(): Promise<void>;
}

export interface StartOptions {
  /** Keep the app's log lines in `logs` instead of writing them to stdout. */
  captureLogs?: boolean;
}

/** Quiet, loopback-only defaults; every test passes what it is about on top. */
const TEST_DEFAULTS: Record<string, string> = {
  LOG_LEVEL: 'warn',
  NOMINATIM_USER_AGENT: TEST_USER_AGENT,
  NOMINATIM_MAX_RPS: '1000',
  UPSTREAM_TIMEOUT_MS: '2000',
  RATE_LIMIT_ENABLED: 'false',
};

/** Every variable the configuration reads: none may leak from one app (or the shell) into the next. */
const CONFIG_KEYS = configVariables();

/**
 * Boots the real AppModule exactly as main.ts does (createApp), listening on 127.0.0.1 with a random
 * port. The environment is set only while the app builds its configuration, then restored.
 */
export async function startApp(env: Record<string, string | undefined>, options: StartOptions = {}): Promise<RunningApp> {
  const saved = new Map(CONFIG_KEYS.map((k) => [k, process.env[k]]));
  for (const k of CONFIG_KEYS) delete process.env[k];
  for (const [k, v] of Object.entries({ ...TEST_DEFAULTS, ...env })) {
    if (v !== undefined) process.env[k] = v;
  }
  const logs: LogLine[] = [];
  const capture = options.captureLogs ? captureAppLogger(logs) : undefined;
  let app: NestExpressApplication;
  try {
    app = await createApp();
  } finally {
    capture?.restore();
    for (const [k, v] of saved) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  }
  const logger = app.get<Logger>(APP_LOGGER);
  if (capture && (logger as unknown as Record<symbol, unknown>)[pino.symbols.streamSym] !== capture.stream) {
    await app.close();
    throw new Error('captureLogs: the app logger does not write to the capture stream; update captureAppLogger');
  }
  let closing: Promise<void> | undefined;
  const forget = track('app', 'an app', () => close());
  // Once only: the leftovers' cleanup may close an app the test closes too.
  const close = (): Promise<void> => {
    forget();
    closing ??= app.close();
    return closing;
  };
  try {
    await app.listen(0, '127.0.0.1');
  } catch (e) {
    await close();
    throw e;
  }
  const { port } = app.getHttpServer().address() as AddressInfo;
  return { app, url: `http://127.0.0.1:${port}`, logs, close };
}

type AppEnv = Record<string, string | undefined>;

export interface E2eOptions {
  fake?: FakeNominatimOptions;
  /** A fake Nominatim already running (shared by several set-ups): used instead of a new one, and left running by stop(). */
  upstream?: FakeNominatim;
  redis?: StartRedisOptions;
  /** Also connect `probe`, a client of the test's own (as the default user), to the redis-server. */
  probe?: boolean;
}

export interface E2eAppOptions extends StartOptions {
  /** Wait until the app's Redis connection is ready (default); false where the test is about a Redis it cannot use. */
  ready?: boolean;
}

/** What an e2e spec runs against: a fake Nominatim, a private redis-server, and the apps it starts on them. */
export interface E2e {
  fake: FakeNominatim;
  redis: RedisProcess;
  /** With `probe`: the test's own look into Redis. */
  probe: RedisClientType;
  /** startApp with REDIS_URL and NOMINATIM_URL pointing here (`env` on top); stop() closes it if the test does not. */
  startApp(env?: AppEnv, options?: E2eAppOptions): Promise<RunningApp>;
  /** Closes the apps still open, the probe, the fake and the redis-server, in that order. */
  stop(): Promise<void>;
}

/**
 * Starts the fake Nominatim and a redis-server (and the probe). Each part is a leftover (leftovers.ts)
 * from the moment it runs, so a start that fails half-way leaves nothing behind either.
 */
export async function startE2e(options: E2eOptions = {}): Promise<E2e> {
  const fake = options.upstream ?? new FakeNominatim(options.fake);
  const [redis] = await Promise.all([startRedis(options.redis), fake.start()]);
  let probe: RedisClientType | undefined;
  let forgetProbe = (): void => undefined;
  if (options.probe) {
    const client: RedisClientType = createClient({ url: redis.url });
    client.on('error', () => undefined);
    forgetProbe = track('client', 'the Redis probe', () => client.disconnect().catch(() => undefined));
    await client.connect();
    probe = client;
  }
  const apps = new Set<RunningApp>();
  return {
    fake,
    redis,
    get probe() {
      if (!probe) throw new Error('startE2e: no probe asked for (options.probe)');
      return probe;
    },
    async startApp(env = {}, { ready = true, ...startOptions } = {}) {
      const svc = await startApp({ REDIS_URL: redis.url, NOMINATIM_URL: fake.url, ...env }, startOptions);
      apps.add(svc);
      if (ready) await eventually(() => svc.app.get(RedisConnectionService).state === 'ready');
      return svc;
    },
    async stop() {
      await Promise.all([...apps].map((svc) => svc.close()));
      forgetProbe();
      await probe?.quit().catch(() => undefined);
      if (!options.upstream) await fake.stop();
      await redis.stop();
    },
  };
}

/**
 * The e2e set-up of a describe block: startE2e in its beforeAll, then `then` (the spec's own start:
 * its variables, its apps), and stop() in its afterAll. The returned object is filled in by beforeAll.
 */
export function useE2e(options: E2eOptions = {}, then?: (e2e: E2e) => unknown): E2e {
  const e2e = {} as E2e;
  beforeAll(async () => {
    Object.defineProperties(e2e, Object.getOwnPropertyDescriptors(await startE2e(options)));
    await then?.(e2e);
  });
  afterAll(() => e2e.stop?.());
  return e2e;
}

/** A fake Nominatim for a describe block that needs no Redis: started in beforeAll, stopped in afterAll. */
export function useFake(options?: FakeNominatimOptions): FakeNominatim {
  const fake = new FakeNominatim(options);
  beforeAll(() => fake.start());
  afterAll(() => fake.stop());
  return fake;
}

/**
 * One app for a describe block on its set-up (e2e.startApp): started in beforeAll, closed in afterAll.
 * The returned object is filled in by beforeAll; `env` as a function is read then (it may name e2e.redis).
 */
export function useApp(e2e: E2e, env: AppEnv | (() => AppEnv) = {}, options: E2eAppOptions = {}): RunningApp {
  const svc = {} as RunningApp;
  beforeAll(async () => {
    const started = await e2e.startApp(typeof env === 'function' ? env() : env, options);
    Object.defineProperties(svc, Object.getOwnPropertyDescriptors(started));
  });
  afterAll(() => svc.close?.());
  return svc;
}

/**
 * While the app is built, hands the app logger an in-memory stream instead of stdout
 * (setLogDestination in src/logging/app-logger.ts). Lines are parsed as they are written.
 */
function captureAppLogger(into: LogLine[]): { stream: pino.DestinationStream; restore(): void } {
  const stream: pino.DestinationStream = {
    write(chunk: string): void {
      for (const raw of chunk.split('\n')) {
        if (raw.trim() === '') continue;
        let fields: Record<string, unknown> = {};
        try {
          fields = JSON.parse(raw) as Record<string, unknown>;
        } catch {
          // not JSON: keep the raw text
        }
        into.push({
          level: String(fields.level ?? 'unknown'),
          msg: String(fields.msg ?? raw),
          context: typeof fields.context === 'string' ? fields.context : undefined,
          at: Date.now(),
          raw,
        });
      }
    },
  };
  setLogDestination(stream);
  return { stream, restore: () => setLogDestination(undefined) };
}

/**
 * Polls `check` until it returns true (or throws after `timeoutMs`): for state that settles
 * asynchronously. The bound is how long to wait before calling it a failure, not a promise about
 * speed: generous, so that a loaded machine does not fail a test that asserts no timing.
 */
export async function eventually(check: () => boolean | Promise<boolean>, timeoutMs = 15_000, stepMs = 25): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await check()) return;
    if (Date.now() > deadline) throw new Error(`condition not met within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, stepMs));
  }
}
