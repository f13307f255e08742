/**
 * The q-quantile of the observations counted in a histogram's buckets, as Prometheus'
 * histogram_quantile computes it: linear interpolation inside the bucket where the rank falls (from 0
 * for the first bucket); past the largest finite bound, that bound. `cumulative[i]` counts the values
 * ≤ bounds[i]; the last entry (one more than bounds) counts them all. undefined without observations.
 */
export function histogramQuantile(q: number, bounds: readonly number[], cumulative: readonly number[]): number | undefined {
  const total = cumulative[cumulative.length - 1] ?? 0;
  if (!(total > 0) || bounds.length === 0) return undefined;
  const rank = Math.min(1, Math.max(0, q)) * total;
  for (let i = 0; i < bounds.length; i++) {
    if (cumulative[i] >= rank) {
      const lower = i === 0 ? 0 : bounds[i - 1];
      const below = i === 0 ? 0 : cumulative[i - 1];
      const inBucket = cumulative[i] - below;
      return inBucket > 0 ? lower + ((bounds[i] - lower) * (rank - below)) / inBucket : bounds[i];
    }
  }
  return bounds[bounds.length - 1];
}

/** `now - before`, bucket by bucket (a histogram over the interval between two readings). */
export function bucketDelta(now: readonly number[], before: readonly number[] | undefined): number[] {
  return now.map((v, i) => Math.max(0, v - (before?.[i] ?? 0)));
}
