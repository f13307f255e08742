import 'reflect-metadata';
import { Logger } from '@nestjs/common';
import cluster from 'node:cluster';
import type { Logger as Pino } from 'pino';
import { createApp } from './app.setup';
import { appConfig, AppConfig, loadConfig } from './config/configuration';
import { ignoreRepeatedStopSignals, runPrimary } from './cluster/web-cluster';
import { endExplainedElsewhere, guardProcessExit, SHUTDOWN_HOOKS_GRACE_MS } from './http/graceful-shutdown';
import { createAppLogger } from './logging/app-logger';
import { APP_LOGGER } from './logging/logging.module';

/** A start-up failure whose message says all there is: printed without a stack trace. */
class CannotListen extends Error {}

async function bootstrap(): Promise<void> {
  try {
    const { app } = loadConfig(process.env);
    if (app.webConcurrency > 1 && cluster.isPrimary) {
      // The workers' own drain bound, their shutdown hooks, and a margin for the primary to see them go.
      runPrimary({ workers: app.webConcurrency, stopTimeoutMs: app.shutdownTimeoutMs + SHUTDOWN_HOOKS_GRACE_MS + 3000, logger: createAppLogger(app.logLevel) });
      return;
    }
  } catch (e) {
    // One readable line naming the variable, then stop: no stack trace for a typo in an env var.
    process.stderr.write(`${(e as Error).message}\n`);
    process.exit(1);
  }
  if (cluster.isWorker) ignoreRepeatedStopSignals();
  const app = await createApp();
  const config = app.get<AppConfig>(appConfig.KEY);
  // createApp enabled Nest's shutdown hooks (drain, close Redis, exit 0); this bounds them.
  guardProcessExit(config.shutdownTimeoutMs, app.get<Pino>(APP_LOGGER));
  try {
    await app.listen(config.port, config.host);
  } catch (e) {
    // The port taken, a HOST that does not resolve or is not this machine's: the variables, not a stack trace.
    throw new CannotListen(`cannot listen on ${config.host}:${config.port} (HOST, PORT): ${(e as Error).message}`);
  }
  new Logger('Bootstrap').log(`places-cache listening on http://${config.host}:${config.port} (docs at /docs)`);
}

// A start-up that fails after the configuration (the port taken, say) stops the process with its reason,
// rather than as an unhandled rejection.
bootstrap().catch((e: unknown) => {
  endExplainedElsewhere();
  const reason = e instanceof CannotListen ? e.message : e instanceof Error ? (e.stack ?? e.message) : String(e);
  process.stderr.write(`places-cache could not start: ${reason}\n`);
  process.exit(1);
});
