import vm from 'node:vm';

/**
 * Jest gives each test file a copy of `process`: listeners added to it never see what the real process
 * emits. The real one is the global of the outer context, which vm.runInThisContext evaluates in.
 */
export function realProcess(): NodeJS.Process {
  return vm.runInThisContext('process') as NodeJS.Process;
}

export interface ProcessWatch {
  /** Reasons of unhandled promise rejections seen since the watch started. */
  readonly unhandledRejections: unknown[];
  /** Uncaught exceptions seen since the watch started (Jest would fail the test too). */
  readonly uncaughtExceptions: unknown[];
  /** Process warnings (MaxListenersExceededWarning and the like) seen since the watch started. */
  readonly warnings: Error[];
  /** Listener counts per event of the real process (this watch's own spies not counted), e.g. to compare before and after a fault. */
  listenerCounts(): Record<string, number>;
  stop(): void;
}

/**
 * Spies on the real process for unhandled rejections, uncaught exceptions and warnings. The spies are
 * prepended and only record: Jest's own handlers still run and still fail the test.
 */
export function watchProcess(): ProcessWatch {
  const proc = realProcess();
  const unhandledRejections: unknown[] = [];
  const uncaughtExceptions: unknown[] = [];
  const warnings: Error[] = [];
  const onRejection = (reason: unknown) => unhandledRejections.push(reason);
  const onException = (error: unknown) => uncaughtExceptions.push(error);
  const onWarning = (warning: Error) => warnings.push(warning);
  let active = true;
  proc.prependListener('unhandledRejection', onRejection);
  proc.prependListener('uncaughtException', onException);
  proc.prependListener('warning', onWarning);
  return {
    unhandledRejections,
    uncaughtExceptions,
    warnings,
    listenerCounts: () => {
      const counts = listenerCounts(proc);
      if (active) for (const name of ['unhandledRejection', 'uncaughtException', 'warning']) counts[name] -= 1;
      return counts;
    },
    stop() {
      active = false;
      proc.off('unhandledRejection', onRejection);
      proc.off('uncaughtException', onException);
      proc.off('warning', onWarning);
    },
  };
}

/** Listener count per event name of any emitter (node-redis clients included). */
export function listenerCounts(emitter: NodeJS.EventEmitter): Record<string, number> {
  return Object.fromEntries(emitter.eventNames().map((name) => [String(name), emitter.listenerCount(name)]));
}
