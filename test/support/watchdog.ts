import { runInNewContext } from 'node:vm';

/**
 * Runs `f` under a 5 s watchdog that interrupts it even in the middle of a regular expression's
 * backtracking (Jest's own timeout cannot stop synchronous code). Parser specs use it with inputs sized
 * so that a parser quadratic in its input needs minutes and a linear one about a millisecond: the test
 * fails on the work done, without asserting any duration.
 */
export function underWatchdog<T>(f: () => T): T {
  return runInNewContext('f()', { f }, { timeout: 5000 }) as T;
}
