import { setTimeout as sleep } from 'node:timers/promises';
import { INestApplicationContext } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import pino from 'pino';
import type { Logger as Pino } from 'pino';
import { AppModule } from '../app.module';
import { RedisConnectionService } from '../cache/redis-connection.service';
import { loadConfig, redisConfig, RedisConfig } from '../config/configuration';
import { Env, EnvReader } from '../config/env-parsers';
import { PinoNestLogger, setLogDestination } from '../logging/app-logger';
import { APP_LOGGER } from '../logging/logging.module';
import { CliError } from './line-input';

/** How long a command waits for Redis before it gives up with one line. */
const REDIS_READY_TIMEOUT_MS = 5000;

/** Where a command's defaults differ from the service's. */
const COMMAND_DEFAULTS: Readonly<Record<string, string>> = {
  LOG_LEVEL: 'error',
  // A command serves no one waiting: a loaded Redis is waited for rather than bypassed, so the
  // upstream pacing stays fleet-wide (a bypassed Redis means pacing per process).
  REDIS_OP_TIMEOUT_MS: '2000',
};

/**
 * Sets the command's defaults in `env` where a variable is unset. Blank is unset, as the service's
 * configuration reads it (EnvReader): `LOG_LEVEL=` in a .env means the default, the command's here.
 */
export function withCommandDefaults(env: Env): void {
  const r = new EnvReader(env);
  for (const [name, value] of Object.entries(COMMAND_DEFAULTS)) if (r.raw(name) === undefined) env[name] = value;
}

/**
 * The service's own application context (config, Redis connection, cache, pacer, fill lock, purge
 * broadcast), without HTTP: a command uses the very providers the service runs, so its keys, TTLs and
 * upstream pacing are the service's. Logs go to standard error (standard output may carry an export),
 * at LOG_LEVEL, default `error` for a command.
 */
export async function openContext(env: NodeJS.ProcessEnv = process.env, opts: { readOnly?: boolean } = {}): Promise<INestApplicationContext> {
  withCommandDefaults(env);
  let config;
  try {
    config = loadConfig(env);
  } catch (e) {
    throw new CliError((e as Error).message);
  }
  if (config.redis.connection === null && config.redis.cluster === null) {
    throw new CliError(
      'REDIS_URL is not set: the commands work on the shared Redis cache (set REDIS_URL, or REDIS_CLUSTER_NODES, as for the service)',
    );
  }
  setLogDestination(pino.destination({ fd: 2, sync: true }));
  const app = await NestFactory.createApplicationContext(AppModule.register(env), { bufferLogs: true, abortOnError: false });
  app.useLogger(new PinoNestLogger(app.get<Pino>(APP_LOGGER)));
  await app.init();
  const conn = app.get(RedisConnectionService);
  // A command that only reads may read a replica (an export that spares the master).
  if (opts.readOnly) conn.readFromReplica();
  const settledOnReplica = () => conn.state === 'read_only' && (!opts.readOnly || conn.singleClient?.isReady === true);
  // A command waits for Redis once, at start (the service instead answers without it meanwhile).
  const readyBy = Date.now() + REDIS_READY_TIMEOUT_MS;
  while (conn.state !== 'ready' && !settledOnReplica() && Date.now() < readyBy) await sleep(50);
  const state = conn.state;
  if (state !== 'ready' && !(opts.readOnly && settledOnReplica())) {
    const redis = app.get<RedisConfig>(redisConfig.KEY);
    const url = redis.connection?.safeUrl ?? redis.cluster?.safeNodes.join(',') ?? '?';
    await app.close().catch(() => undefined);
    // A replica answers, but the service skips it (RedisConnectionService): every write would fail.
    if (state === 'read_only') throw new CliError(`Redis at ${url} is a read-only replica: point REDIS_URL at its master`);
    throw new CliError(`cannot reach Redis at ${url} (no connection within ${REDIS_READY_TIMEOUT_MS / 1000} s)`);
  }
  return app;
}
