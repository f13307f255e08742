interface Sleeper {
  timer?: NodeJS.Timeout;
  fail(error: Error): void;
}

/** The callers of one UpstreamPacer sleeping for their slots: counted, and failed together by a cool-down. */
export class Sleepers {
  private readonly all = new Set<Sleeper>();

  /** `now`: the pacer's local monotonic clock (ms). */
  constructor(private readonly now: () => number) {}

  get size(): number {
    return this.all.size;
  }

  /** Wakes every sleeper with `error` (a cool-down: none of them may start). */
  failAll(error: Error): void {
    for (const sleeper of [...this.all]) sleeper.fail(error);
  }

  /** Sleeps until `until` on the local clock, or until `cut` settles; rejects when `signal` aborts. */
  sleep(until: number, signal?: AbortSignal, cut?: Promise<void>): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const onAbort = () => sleeper.fail(toError(signal?.reason));
      const sleeper: Sleeper = {
        fail: (error) => {
          done();
          reject(error);
        },
      };
      const done = () => {
        clearTimeout(sleeper.timer);
        signal?.removeEventListener('abort', onAbort);
        this.all.delete(sleeper);
      };
      if (signal?.aborted) return reject(toError(signal.reason));
      this.all.add(sleeper);
      signal?.addEventListener('abort', onAbort, { once: true });
      void cut?.then(() => {
        done();
        resolve();
      });
      const tick = () => {
        const remaining = until - this.now();
        if (remaining > 0) {
          sleeper.timer = setTimeout(tick, remaining);
          return;
        }
        done();
        resolve();
      };
      tick();
    });
  }
}

/** An abort signal's reason as an Error. */
export function toError(reason: unknown): Error {
  return reason instanceof Error ? reason : new Error(String(reason ?? 'aborted'));
}
