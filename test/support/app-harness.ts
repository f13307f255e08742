import type { NestExpressApplication } from '@nestjs/platform-express';
import type { AddressInfo } from 'node:net';
import pino, { type Logger } from 'pino';
import { createApp } from '../../src/app.setup';
import { setLogDestination } from '../../src/logging/app-logger';
import { APP_LOGGER } from '../../src/logging/logging.module';
import { TEST_USER_AGENT } from './app-process';
import { configVariables } from './config-variables';
import { track } from './leftovers';

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
