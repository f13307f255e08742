import cluster from 'node:cluster';
import type { Worker } from 'node:cluster';
import type { Logger } from 'pino';
import { settleLogger } from '../logging/app-logger';
import { relayClusterScrapes } from '../metrics/cluster-metrics';

/*
 * WEB_CONCURRENCY > 1 (the Heroku convention): this process becomes the primary of a node:cluster
 * group. It forks that many workers, each a whole app sharing the one port (the primary hands out
 * connections), and does nothing else itself but relay /metrics scrapes and signals. What the workers
 * must share goes through Redis, which configuration requires for a group: the upstream pacer (so the
 * group is as polite as one process), the miss rate limit, fills and purges.
 */

interface ClusterOptions {
  workers: number;
  /** How long workers get to drain after SIGTERM before the primary kills them (their own bound + grace). */
  stopTimeoutMs: number;
  logger: Logger;
}

/** Unexpected worker exits tolerated within CRASH_WINDOW_MS before the group gives up (a crash loop). */
export const MAX_CRASHES = 5;
export const CRASH_WINDOW_MS = 60_000;

/** Decides whether a worker that died on its own is replaced: not when it keeps dying. Pure. */
export class CrashBudget {
  private readonly times: number[] = [];

  constructor(
    private readonly max = MAX_CRASHES,
    private readonly windowMs = CRASH_WINDOW_MS,
  ) {}

  /** Records a crash at `now`; true while the budget allows a replacement. */
  allowRestart(now: number): boolean {
    this.times.push(now);
    while (this.times.length > 0 && this.times[0] <= now - this.windowMs) this.times.shift();
    return this.times.length <= this.max;
  }
}

/**
 * The workers whose process is still running. node:cluster keeps a worker in `cluster.workers` until
 * it has both exited and closed its IPC channel, in either order: when its exit comes first, the
 * worker is still listed as its 'exit' event fires. Counted as live, the last worker to exit so would
 * leave the primary waiting for a 'disconnect' it does not listen to, and the group would end without
 * its exit line (seen once in CI).
 */
export function runningWorkers<W extends Pick<Worker, 'isDead'>>(workers: NodeJS.Dict<W> | undefined): W[] {
  return Object.values(workers ?? {}).filter((w): w is W => w !== undefined && !w.isDead());
}

/** Runs the primary until the group has stopped; then exits the process (0 when every worker did). */
export function runPrimary({ workers, stopTimeoutMs, logger }: ClusterOptions): void {
  const log = logger.child({ context: 'Cluster' });
  const budget = new CrashBudget();
  const live = (): Worker[] => runningWorkers(cluster.workers);
  let stopping: NodeJS.Signals | undefined;
  let failed = false;

  const finish = (code: number): void => {
    log.info({ code }, `All workers stopped; exiting with code ${code}`);
    // Written out before the exit, not handed to an asynchronous write that the exit would cut short.
    void settleLogger(logger).finally(() => process.exit(code));
  };

  const stop = (signal: NodeJS.Signals, reason?: string): void => {
    if (stopping !== undefined) return;
    stopping = signal;
    log.info({ signal }, reason ?? `${signal} received: stopping ${live().length} worker(s)`);
    // Heroku signals every process of the dyno, docker only PID 1: each worker is told here too, and a
    // worker ignores a second SIGTERM while it drains.
    for (const w of live()) w.process.kill(signal);
    setTimeout(() => {
      const left = live();
      log.error({ workers: left.length }, `Workers still running ${stopTimeoutMs} ms after ${signal}; killing them`);
      for (const w of left) w.process.kill('SIGKILL');
      finish(1);
    }, stopTimeoutMs).unref();
    if (live().length === 0) finish(failed ? 1 : 0);
  };

  // Until a worker has listened, one that ends by itself could not start (the port taken, a HOST not
  // here), and its siblings will not either. Once the group serves, a replacement that fails to start
  // is a crash like any other: stopping the group for it would take the running workers down with it.
  let served = false;
  cluster.on('listening', () => (served = true));
  cluster.on('message', relayClusterScrapes(live));
  cluster.on('exit', (worker, code, signal) => {
    // A worker ended by the very signal relayed to it had no handler for it yet: it was still loading,
    // with nothing to drain. Stopped as asked, it does not make the group's exit code 1.
    const clean = (code === 0 && signal === null) || (signal !== null && signal === stopping);
    if (stopping !== undefined) {
      if (!clean) failed = true;
      log.info({ worker: worker.id, pid: worker.process.pid, code, signal }, `Worker ${worker.id} exited`);
      if (live().length === 0) finish(failed ? 1 : 0);
      return;
    }
    // A start that fails (the port taken) fails the same way in a replacement: not a crash to retry
    // MAX_CRASHES times, each with its own error, but the group's failed start (the worker said why).
    // Exit code 0 is a worker stopped by a signal of its own (Heroku signals every process), not a failure.
    if (signal === null && code !== 0 && !served) {
      log.error({ worker: worker.id, pid: worker.process.pid, code }, `Worker ${worker.id} could not start; stopping the group`);
      failed = true;
      stop('SIGTERM', `Stopping ${live().length} other worker(s)`);
      return;
    }
    if (budget.allowRestart(Date.now())) {
      log.error({ worker: worker.id, pid: worker.process.pid, code, signal }, `Worker ${worker.id} died unexpectedly; starting another`);
      cluster.fork();
      return;
    }
    log.error({ code, signal }, `Workers died ${MAX_CRASHES + 1} times within ${CRASH_WINDOW_MS / 1000} s; stopping the group`);
    failed = true;
    stop('SIGTERM', 'Stopping the group after repeated worker crashes');
  });
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));

  log.info({ workers }, `WEB_CONCURRENCY=${workers}: starting ${workers} workers sharing one port`);
  for (let i = 0; i < workers; i++) cluster.fork();
}

/**
 * In a worker: Nest's shutdown hook handles the first SIGTERM/SIGINT and then removes itself, so a
 * second one (the primary's, after the dyno's own) would kill the worker mid-drain. These listeners
 * keep that second signal from doing anything. A first signal that comes while the app is still being
 * built (no other listener yet: Nest's hook is added in createApp) has no drain to wait for, and
 * ignoring it would leave the worker to start listening until the primary kills it: it ends the worker
 * with 0, as the stop the primary asked for.
 */
export function ignoreRepeatedStopSignals(): void {
  let signalled = false;
  const onStop = (signal: NodeJS.Signals): void => {
    if (signalled) return;
    signalled = true;
    // Added first, this listener runs before Nest's: alone, the app has no stop handler yet.
    if (process.listenerCount(signal) === 1) process.exit(0);
  };
  process.on('SIGTERM', onStop);
  process.on('SIGINT', onStop);
}
