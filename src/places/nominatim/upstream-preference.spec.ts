import { retryAfterMs, UpstreamDemotedError, UpstreamPreference } from './upstream-preference';

describe(UpstreamPreference.name, () => {
  const t0 = 1_000_000;

  it('tries every upstream in order of preference while none failed', () => {
    expect(new UpstreamPreference(3, 30_000).order(t0)).toEqual([0, 1, 2]);
  });

  it('passes over a demoted upstream until its back-off ends, then tries it first again', () => {
    const p = new UpstreamPreference(2, 30_000);
    expect(p.demote(0, t0)).toBe(1000);
    expect(p.order(t0)).toEqual([1]);
    expect(p.order(t0 + 999)).toEqual([1]);
    expect(p.order(t0 + 1000)).toEqual([0, 1]);
    expect(p.remainingMs(0, t0 + 400)).toBe(600);
  });

  it('doubles the back-off with each failure in a row, up to the cap; a success resets it', () => {
    const p = new UpstreamPreference(2, 5000);
    expect([1, 2, 3, 4, 5].map(() => p.demote(0, t0))).toEqual([1000, 2000, 4000, 5000, 5000]);
    p.succeeded(0);
    expect(p.order(t0)).toEqual([0, 1]);
    expect(p.demote(0, t0)).toBe(1000);
  });

  it("aborts the waits for an upstream's slot when it is demoted, and only those", () => {
    const p = new UpstreamPreference(2, 30_000);
    const first = p.demotion(0);
    expect(p.demotion(0)).toBe(first);
    const other = p.demotion(1);
    p.demote(0, t0);
    expect(first.aborted).toBe(true);
    expect(first.reason).toBeInstanceOf(UpstreamDemotedError);
    expect(other.aborted).toBe(false);
    // A wait begun after the demotion is aborted by the next one, not at once.
    const next = p.demotion(0);
    expect(next.aborted).toBe(false);
    p.succeeded(0);
    expect(next.aborted).toBe(false);
    p.demote(0, t0);
    expect(next.aborted).toBe(true);
  });

  it('counts one outage once: a failure of an attempt begun before the last demotion does not double the back-off', () => {
    const p = new UpstreamPreference(2, 30_000);
    // Four misses in flight when the upstream begins to time out.
    const inFlight = [1, 2, 3, 4].map(() => p.demotion(0));
    expect(inFlight.map((since) => p.demote(0, t0, undefined, since))).toEqual([1000, undefined, undefined, undefined]);
    expect(p.remainingMs(0, t0)).toBe(1000);
    // A later attempt that fails again is the next failure in a row.
    expect(p.demote(0, t0 + 1000, undefined, p.demotion(0))).toBe(2000);
  });

  it("still extends the demotion to a longer Retry-After that a failure of the same outage brought", () => {
    const p = new UpstreamPreference(2, 30_000);
    const first = p.demotion(0);
    const second = p.demotion(0);
    expect(p.demote(0, t0, undefined, first)).toBe(1000);
    expect(p.demote(0, t0, 120_000, second)).toBeUndefined();
    expect(p.remainingMs(0, t0)).toBe(30_000);
    expect(p.demote(0, t0 + 30_000, undefined, p.demotion(0))).toBe(2000);
  });

  it('honours Retry-After, capped', () => {
    const p = new UpstreamPreference(2, 30_000);
    expect(p.demote(0, t0, 7000)).toBe(7000);
    expect(p.demote(1, t0, 3_600_000)).toBe(30_000);
    expect(p.order(t0 + 6999)).toEqual([]);
    expect(p.soonestMs(t0)).toBe(7000);
    expect(p.order(t0 + 7000)).toEqual([0]);
  });
});

describe('retryAfterMs', () => {
  it('reads delta-seconds and HTTP dates; ignores the rest', () => {
    const now = Date.parse('2026-01-01T00:00:00Z');
    expect(retryAfterMs('5', now)).toBe(5000);
    expect(retryAfterMs(' 2 ', now)).toBe(2000);
    expect(retryAfterMs('Thu, 01 Jan 2026 00:00:09 GMT', now)).toBe(9000);
    expect(retryAfterMs('0', now)).toBeUndefined();
    expect(retryAfterMs('soon', now)).toBeUndefined();
    expect(retryAfterMs(undefined, now)).toBeUndefined();
  });
});
