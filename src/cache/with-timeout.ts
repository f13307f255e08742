/** A bounded operation (a Redis round trip, an upstream call) did not settle in time. */
export class OperationTimeoutError extends Error {
  constructor(
    public readonly what: string,
    public readonly timeoutMs: number,
  ) {
    super(`${what} timed out after ${timeoutMs} ms`);
    this.name = 'OperationTimeoutError';
  }
}

/**
 * Settles like `p`, or rejects with {@link OperationTimeoutError} after `ms`. node-redis v4 has no
 * command timeout (a frozen Redis hangs a call until it resumes), so every Redis call that sits on a
 * request path goes through this. `p` keeps running after a timeout; its late rejection is swallowed
 * here so it never surfaces as an unhandled rejection. A reply that had arrived when the timer fired
 * (late, because the event loop was busy) is not a timeout.
 */
export function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  p.catch(() => undefined);
  if (!Number.isFinite(ms)) return p;
  return new Promise<T>((resolve, reject) => {
    // After an event-loop stall, expired timers run before the I/O that arrived meanwhile: a reply
    // already waiting in the socket is handled (poll phase) before setImmediate's turn, so it wins.
    const timer = setTimeout(() => setImmediate(() => reject(new OperationTimeoutError(what, ms))), Math.max(0, ms));
    p.then(
      (value) => {
        clearTimeout(timer);
        resolve(value);
      },
      (error: unknown) => {
        clearTimeout(timer);
        reject(error);
      },
    );
  });
}
