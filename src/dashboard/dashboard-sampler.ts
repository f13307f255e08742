import { Inject, Injectable, OnModuleDestroy } from '@nestjs/common';
import { RedisConnectionService } from '../cache/redis-connection.service';
import { nominatimConfig, NominatimConfig } from '../config/configuration';
import { MetricsService } from '../metrics/metrics.service';
import { bucketDelta, histogramQuantile } from './histogram-quantile';

/** Seconds between two points of the dashboard's charts (the page refreshes at the same pace). */
const SAMPLE_SECONDS = 2;
/** Points kept: five minutes of history. */
const POINTS = 150;
/** Sampling stops this long after the last page asked for data: an unwatched dashboard costs nothing. */
const IDLE_MS = 10 * 60_000;

/** Counter totals and histogram buckets read from this instance's registry at one moment. */
export interface Reading {
  at: number;
  hit: number;
  miss: number;
  stale: number;
  error: number;
  upstream: number;
  upstreamErrors: number;
  /** places_cache_request_duration_seconds: bucket bounds, and cumulative counts by outcome */
  bounds: number[];
  latency: Record<'hit' | 'miss', number[]>;
}

/** One point of the charts: rates over the interval since the previous reading, gauges as read. */
export interface Point {
  /** epoch seconds */
  t: number;
  hit: number;
  miss: number;
  stale: number;
  error: number;
  /** hits among hits, misses and stale answers, in percent; null without such requests */
  hitRatio: number | null;
  upstream: number;
  upstreamErrors: number;
  budget: number;
  queue: number;
  /** milliseconds; null without requests of that kind in the interval */
  hitP50: number | null;
  hitP99: number | null;
  missP50: number | null;
  missP99: number | null;
  l1Entries: number;
  l1Bytes: number;
}

export interface DashboardData {
  sampleSeconds: number;
  redis: string;
  points: Point[];
}

const ms = (seconds: number | undefined) => (seconds === undefined ? null : Math.round(seconds * 100_000) / 100);
const round = (n: number) => Math.round(n * 100) / 100;

/** The point between two readings (pure). */
export function pointBetween(before: Reading, now: Reading, gauges: Pick<Point, 'budget' | 'queue' | 'l1Entries' | 'l1Bytes'>): Point {
  const dt = Math.max(0.001, (now.at - before.at) / 1000);
  const rate = (k: 'hit' | 'miss' | 'stale' | 'error' | 'upstream' | 'upstreamErrors') => round(Math.max(0, now[k] - before[k]) / dt);
  const served = now.hit - before.hit + (now.miss - before.miss) + (now.stale - before.stale);
  const q = (outcome: 'hit' | 'miss', quantile: number) =>
    ms(histogramQuantile(quantile, now.bounds, bucketDelta(now.latency[outcome], before.latency[outcome])));
  return {
    t: Math.round(now.at / 1000),
    hit: rate('hit'),
    miss: rate('miss'),
    stale: rate('stale'),
    error: rate('error'),
    hitRatio: served > 0 ? round(((now.hit - before.hit) / served) * 100) : null,
    upstream: rate('upstream'),
    upstreamErrors: rate('upstreamErrors'),
    hitP50: q('hit', 0.5),
    hitP99: q('hit', 0.99),
    missP50: q('miss', 0.5),
    missP99: q('miss', 0.99),
    ...gauges,
  };
}

/**
 * The dashboard's history: every SAMPLE_SECONDS, this instance's metrics are read and turned into
 * one point (rates since the previous reading). It samples only while a page is watching.
 */
@Injectable()
export class DashboardSampler implements OnModuleDestroy {
  private timer: NodeJS.Timeout | undefined;
  private last: Reading | undefined;
  private readonly points: Point[] = [];
  private watchedAt = 0;

  constructor(
    private readonly metrics: MetricsService,
    private readonly redis: RedisConnectionService,
    @Inject(nominatimConfig.KEY) private readonly nominatim: NominatimConfig,
  ) {}

  /** What the page draws; starts sampling when nobody was watching. */
  async data(): Promise<DashboardData> {
    this.watchedAt = Date.now();
    if (this.timer === undefined) {
      this.last = await this.read();
      this.timer = setInterval(() => void this.sample(), SAMPLE_SECONDS * 1000);
      this.timer.unref();
    }
    return { sampleSeconds: SAMPLE_SECONDS, redis: this.redis.state, points: this.points };
  }

  private async sample(): Promise<void> {
    if (Date.now() - this.watchedAt > IDLE_MS) return this.stop();
    const now = await this.read();
    const before = this.last;
    this.last = now;
    if (before === undefined) return;
    const gauge = async (g: { get(): Promise<{ values: Array<{ value: number }> }> }) => (await g.get()).values.reduce((s, v) => s + v.value, 0);
    this.points.push(
      pointBetween(before, now, {
        budget: this.nominatim.maxRps,
        queue: await gauge(this.metrics.pacingWaiting),
        l1Entries: await gauge(this.metrics.l1Entries),
        l1Bytes: await gauge(this.metrics.l1Bytes),
      }),
    );
    if (this.points.length > POINTS) this.points.shift();
  }

  private async read(): Promise<Reading> {
    const outcomes = (await this.metrics.cacheOutcomes.get()).values;
    const byOutcome = (...names: string[]) => outcomes.filter((v) => names.includes(String(v.labels.outcome))).reduce((s, v) => s + v.value, 0);
    const http = (await this.metrics.httpRequests.get()).values;
    const upstream = (await this.metrics.upstreamRequests.get()).values;
    const histogram = (await this.metrics.cacheDuration.get()).values;
    const bounds = bucketBounds(histogram);
    const latency: Record<'hit' | 'miss', number[]> = { hit: [], miss: [] };
    for (const v of histogram) {
      const outcome = String(v.labels.outcome);
      if (v.metricName === 'places_cache_request_duration_seconds_bucket' && (outcome === 'hit' || outcome === 'miss')) latency[outcome].push(v.value);
    }
    // A series appears with its first observation: until then it counts nothing in every bucket.
    for (const k of ['hit', 'miss'] as const) if (latency[k].length === 0) latency[k] = new Array<number>(bounds.length + 1).fill(0);
    return {
      at: Date.now(),
      hit: byOutcome('hit'),
      miss: byOutcome('miss', 'bypass'),
      stale: byOutcome('stale'),
      error: http.filter((v) => Number(v.labels.status) >= 500).reduce((s, v) => s + v.value, 0),
      upstream: upstream.reduce((s, v) => s + v.value, 0),
      upstreamErrors: upstream.filter((v) => !/^[124]\d\d$/.test(String(v.labels.status))).reduce((s, v) => s + v.value, 0),
      bounds,
      latency,
    };
  }

  private stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
    this.last = undefined;
  }

  onModuleDestroy(): void {
    this.stop();
  }
}

/** The finite bucket bounds of the first series of a histogram's samples (every series has the same). */
function bucketBounds(samples: Array<{ metricName?: string; labels: Record<string, string | number> }>): number[] {
  const buckets = samples.filter((v) => v.metricName === 'places_cache_request_duration_seconds_bucket');
  if (buckets.length === 0) return [];
  const first = String(buckets[0].labels.outcome);
  return buckets.filter((v) => String(v.labels.outcome) === first && v.labels.le !== '+Inf').map((v) => Number(v.labels.le));
}
