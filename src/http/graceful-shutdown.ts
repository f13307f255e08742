import { Logger } from '@nestjs/common';
import { ExpressAdapter } from '@nestjs/platform-express';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { Logger as PinoLogger } from 'pino';
import { flushLogger, settleLogger } from '../logging/app-logger';

/** How often idle keep-alive connections are closed while draining (a finished response leaves its socket idle). */
const IDLE_SWEEP_MS = 20;

interface DrainResult {
  /** every connection ended on its own within the bound */
  drained: boolean;
  ms: number;
}

/**
 * Stops `server` the graceful way: no new connections (the port closes at once), idle keep-alive
 * connections closed, requests already running allowed to finish (their connections are closed as
 * soon as their answer is sent), and whatever still runs after `timeoutMs` cut off.
 */
export function drainHttpServer(server: Server, timeoutMs: number): Promise<DrainResult> {
  const started = performance.now();
  return new Promise<DrainResult>((resolve) => {
    let timedOut = false;
    // A request that arrives on a kept-alive connection meanwhile is still answered, then its connection closes.
    const lastOnConnection = (_req: IncomingMessage, res: ServerResponse) => {
      if (!res.headersSent) res.setHeader('Connection', 'close');
    };
    server.prependListener('request', lastOnConnection);
    const sweep = setInterval(() => server.closeIdleConnections(), IDLE_SWEEP_MS);
    const deadline = setTimeout(() => {
      timedOut = true;
      server.closeAllConnections();
    }, timeoutMs);
    // Node's close() already closes the idle connections and calls back once the last one has ended.
    server.close(() => {
      clearInterval(sweep);
      clearTimeout(deadline);
      server.removeListener('request', lastOnConnection);
      resolve({ drained: !timedOut, ms: Math.round(performance.now() - started) });
    });
  });
}

/**
 * Express adapter whose close sequence starts with draining the HTTP server. Nest calls
 * `beforeClose()` before any OnModuleDestroy / OnApplicationShutdown hook, so requests still running
 * finish with Redis, the fill lock and the upstream client all intact; only then are those closed.
 */
export class DrainingExpressAdapter extends ExpressAdapter {
  private readonly shutdownLogger = new Logger('Shutdown');
  /** Bound on the drain (SHUTDOWN_TIMEOUT_MS), set once the configuration is loaded. */
  drainTimeoutMs = 10_000;

  override async beforeClose(): Promise<void> {
    super.beforeClose();
    const server = this.getHttpServer() as Server | undefined;
    if (!server?.listening) return;
    const open = await new Promise<number>((resolve) => server.getConnections((_e, n) => resolve(n ?? 0)));
    this.shutdownLogger.log(`Stopped accepting connections; letting ${open} open connection(s) finish (at most ${this.drainTimeoutMs} ms)`);
    const result = await drainHttpServer(server, this.drainTimeoutMs);
    if (result.drained) this.shutdownLogger.log(`HTTP server drained in ${result.ms} ms`);
    else this.shutdownLogger.warn(`Requests still running after ${this.drainTimeoutMs} ms (SHUTDOWN_TIMEOUT_MS) were cut off`);
  }
}

/** Time the shutdown hooks (Redis QUIT, log flush) get after the drain before the process gives up on them. */
export const SHUTDOWN_HOOKS_GRACE_MS = 2_000;

/** What a hung shutdown still gives its last log lines to be written (within Heroku's 30 s). */
const LAST_LINES_GRACE_MS = 500;

/** Set once a line has said how the process ends: the 'exit' handler then adds none (one exit line). */
let endExplained = false;

/** For a path that says itself why the process exits (a failed start): no "Exiting with code" line after it. */
export function endExplainedElsewhere(): void {
  endExplained = true;
}

/**
 * For the process (main.ts), not for tests: on SIGTERM/SIGINT, if the shutdown sequence has not
 * exited within `drainTimeoutMs + SHUTDOWN_HOOKS_GRACE_MS` (a hook hangs), exit with 1 anyway, before
 * the platform's SIGKILL (Heroku: 30 s) — and always leave one last log line saying how the process ended.
 */
export function guardProcessExit(drainTimeoutMs: number, logger: PinoLogger): void {
  const limitMs = drainTimeoutMs + SHUTDOWN_HOOKS_GRACE_MS;
  let signalled: string | undefined;
  const arm = (signal: NodeJS.Signals) => {
    if (signalled !== undefined) return;
    signalled = signal;
    logger.info({ context: 'Shutdown', signal }, `${signal} received: shutting down`);
    setTimeout(() => {
      endExplained = true;
      logger.error({ context: 'Shutdown', code: 1, signal }, `Shutdown did not finish within ${limitMs} ms; exiting with code 1`);
      void settleLogger(logger, LAST_LINES_GRACE_MS).finally(() => process.exit(1));
    }, limitMs).unref();
  };
  process.once('SIGTERM', arm);
  process.once('SIGINT', arm);
  process.once('exit', (code) => {
    if (!endExplained) logger.info({ context: 'Shutdown', code, signal: signalled }, `Exiting with code ${code}`);
    flushLogger(logger);
  });
}
