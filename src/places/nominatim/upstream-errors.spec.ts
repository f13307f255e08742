import { passesToWaiters, upstreamBusy, upstreamFailed, upstreamInvalid, upstreamTimeout, upstreamTooLarge } from './upstream-errors';

describe('passesToWaiters', () => {
  it('is true for what asking Nominatim came to: the instances waiting for the same fill fail alike', () => {
    for (const e of [
      upstreamTimeout(1500),
      upstreamFailed('status 500', 500),
      upstreamFailed('ECONNREFUSED'),
      upstreamBusy('refused', 'upstream_refused', 5, 429),
      upstreamBusy('cooling down', 'upstream_cooldown', 5),
      upstreamInvalid('HTML instead of JSON'),
      upstreamTooLarge(2 ** 21),
    ]) {
      expect([e.code, passesToWaiters(e)]).toEqual([e.code, true]);
    }
  });

  it("is false for the asking instance's own state (nothing sent): the waiters ask themselves", () => {
    for (const e of [upstreamBusy('queue full', 'upstream_queue_full', 2), upstreamBusy('all failing', 'upstream_unavailable', 2)]) {
      expect([e.code, passesToWaiters(e)]).toEqual([e.code, false]);
    }
  });
});
