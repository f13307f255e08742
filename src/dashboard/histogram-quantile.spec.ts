import { bucketDelta, histogramQuantile } from './histogram-quantile';

describe('histogramQuantile', () => {
  const bounds = [0.001, 0.01, 0.1, 1];

  it('interpolates inside the bucket where the rank falls, as Prometheus does', () => {
    // 10 values ≤ 1 ms, 10 more in (1 ms, 10 ms]
    const cumulative = [10, 20, 20, 20, 20];
    expect(histogramQuantile(0.5, bounds, cumulative)).toBeCloseTo(0.001);
    expect(histogramQuantile(0.25, bounds, cumulative)).toBeCloseTo(0.0005);
    expect(histogramQuantile(0.75, bounds, cumulative)).toBeCloseTo(0.0055);
    expect(histogramQuantile(0.99, bounds, cumulative)).toBeCloseTo(0.001 + 0.009 * 0.98);
  });

  it('gives the largest finite bound for ranks in the +Inf bucket, and nothing without observations', () => {
    expect(histogramQuantile(0.99, bounds, [0, 0, 0, 1, 10])).toBe(1);
    expect(histogramQuantile(0.5, bounds, [0, 0, 0, 0, 0])).toBeUndefined();
  });

  it('bucketDelta: the counts of the interval between two readings, never negative (a reset)', () => {
    expect(bucketDelta([5, 9, 12], [1, 2, 3])).toEqual([4, 7, 9]);
    expect(bucketDelta([5, 9], undefined)).toEqual([5, 9]);
    expect(bucketDelta([1, 1], [4, 4])).toEqual([0, 0]);
  });
});
