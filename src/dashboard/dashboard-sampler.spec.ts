import { pointBetween, Reading } from './dashboard-sampler';

describe('pointBetween', () => {
  const bounds = [0.001, 0.01, 0.1];
  const reading = (at: number, n: number, latency: Reading['latency']): Reading => ({
    at,
    hit: 8 * n,
    miss: 2 * n,
    stale: 0,
    error: n,
    upstream: 2 * n,
    upstreamErrors: 0,
    bounds,
    latency,
  });

  it('turns two readings into rates per second, a hit ratio and the interval\'s latency quantiles', () => {
    const before = reading(10_000, 10, { hit: [0, 0, 0, 0], miss: [0, 0, 0, 0] });
    // 2 s later: 10 more of each unit; 80 hits all ≤ 1 ms, 20 misses in (10 ms, 100 ms]
    const now = reading(12_000, 20, { hit: [80, 80, 80, 80], miss: [0, 0, 20, 20] });
    const p = pointBetween(before, now, { budget: 1, queue: 3, l1Entries: 5, l1Bytes: 1000 });
    expect(p).toMatchObject({ t: 12, hit: 40, miss: 10, stale: 0, error: 5, hitRatio: 80, upstream: 10, budget: 1, queue: 3, l1Entries: 5 });
    expect(p.hitP50).toBeCloseTo(0.5);
    expect(p.hitP99).toBeCloseTo(0.99);
    expect(p.missP50).toBeCloseTo(55);
    expect(p.missP99).toBeCloseTo(99.1);
  });

  it('has no ratio or latency for an idle interval, and no negative rate after a reset', () => {
    const same = reading(0, 5, { hit: [1, 1, 1, 1], miss: [0, 0, 0, 0] });
    const p = pointBetween(same, { ...same, at: 2000 }, { budget: 1, queue: 0, l1Entries: 0, l1Bytes: 0 });
    expect(p).toMatchObject({ hit: 0, hitRatio: null, hitP50: null, missP99: null });
    const reset = pointBetween(reading(0, 10, same.latency), reading(2000, 1, same.latency), { budget: 1, queue: 0, l1Entries: 0, l1Bytes: 0 });
    expect(reset.hit).toBe(0);
  });
});
