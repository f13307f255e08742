import { Injectable, OnModuleDestroy } from '@nestjs/common';
import { collectDefaultMetrics, Counter, Gauge, Histogram, LabelValues, Registry } from 'prom-client';
import { CountingHistogram } from './counting-histogram';
import { inWorkerGroup, scrapeCluster, serveClusterCollect } from './cluster-metrics';

/** Something whose size is read when /metrics is scraped (the L1 cache), instead of on every write. */
interface SizeSource {
  readonly bytes: number;
  readonly entries: number;
}

/** A counter series the hit path adds to (see MetricsService.tally). */
export interface CounterSeries {
  inc(): void;
}

/** Increments of one bound counter series, added up in a number until the registry is read. */
class Tally implements CounterSeries {
  private n = 0;

  constructor(private readonly series: { inc(value: number): void }) {}

  inc(): void {
    this.n++;
  }

  flush(): void {
    if (this.n === 0) return;
    const n = this.n;
    this.n = 0;
    this.series.inc(n);
  }
}

/** Request durations, in seconds: a hit's half millisecond to a slow miss's half minute (both request histograms, so their panels line up). */
const REQUEST_SECONDS_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];

/**
 * The counters an operator of a caching gateway asks for: hit ratio, upstream load and latency,
 * time spent queueing for Nominatim's rate limit, Redis health. One registry per app instance, so
 * several instances in one process (tests, benchmark) do not share numbers.
 */
@Injectable()
export class MetricsService implements OnModuleDestroy {
  readonly registry = new Registry();
  /** In a worker of a WEB_CONCURRENCY group: stops answering the primary's collect requests. */
  private readonly stopClusterCollect: (() => void) | undefined;
  private l1Source: SizeSource | undefined;
  private readonly tallies: Tally[] = [];
  /** Counters with tallies hand them over before they are read (scrape, or get() in tests). */
  private readonly flushTallies = () => {
    for (const t of this.tallies) t.flush();
  };

  readonly httpRequests = new Counter({
    name: 'places_http_requests_total',
    help: 'HTTP requests answered, by route, method and status',
    labelNames: ['route', 'method', 'status'] as const,
    registers: [this.registry],
    collect: this.flushTallies,
  });

  /** Observed once per request: a CountingHistogram, not prom-client's (see there). */
  readonly httpDuration = new CountingHistogram(
    'places_http_request_duration_seconds',
    'Time from request to the last byte of the answer, by route',
    'route',
    REQUEST_SECONDS_BUCKETS,
    this.registry,
  );

  /** By what the cache did (hit, miss, stale, bypass): the dashboard's and Grafana's hit and miss latency. */
  readonly cacheDuration = new CountingHistogram(
    'places_cache_request_duration_seconds',
    'Time from request to the last byte of the answer of a place request, by cache outcome (hit, miss, stale, bypass)',
    'outcome',
    REQUEST_SECONDS_BUCKETS,
    this.registry,
  );

  /** Set from NOMINATIM_MAX_RPS (see UpstreamBudget): what upstream rate panels are drawn against. */
  readonly upstreamBudget = new Gauge({
    name: 'places_upstream_budget_requests_per_second',
    help: 'Upstream requests per second the whole fleet may send (NOMINATIM_MAX_RPS), by upstream host',
    labelNames: ['upstream'] as const,
    registers: [this.registry],
    // Every worker of a WEB_CONCURRENCY group sets the same fleet-wide budget: summed, the group would
    // report N times NOMINATIM_MAX_RPS, and the budget alert (rate >= 0.9 × budget) could never fire.
    aggregator: 'max',
  });

  readonly cacheOutcomes = new Counter({
    name: 'places_cache_outcomes_total',
    help: 'What the cache did for each place request: hit, miss, stale, bypass (Redis unusable), coalesced (waited for another request\'s fill)',
    labelNames: ['outcome', 'tier'] as const,
    registers: [this.registry],
    collect: this.flushTallies,
  });

  readonly upstreamRequests = new Counter({
    name: 'places_upstream_requests_total',
    help: 'Requests sent to Nominatim, by endpoint, status (or timeout/error) and upstream (its host)',
    labelNames: ['endpoint', 'status', 'upstream'] as const,
    registers: [this.registry],
  });

  readonly upstreamDuration = new Histogram({
    name: 'places_upstream_duration_seconds',
    help: 'Nominatim response time, by endpoint and upstream (its host)',
    labelNames: ['endpoint', 'upstream'] as const,
    buckets: [0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 20],
    registers: [this.registry],
  });

  readonly pacingWaiting = new Gauge({
    name: 'places_pacing_queue_length',
    help: 'Misses currently waiting for their turn at the upstream rate limit',
    registers: [this.registry],
  });

  readonly pacingWait = new Histogram({
    name: 'places_pacing_wait_seconds',
    help: 'Time a miss waited for its upstream slot',
    buckets: [0, 0.01, 0.1, 0.5, 1, 2, 5, 10, 20],
    registers: [this.registry],
  });

  readonly pacingRejected = new Counter({
    name: 'places_pacing_rejected_total',
    help: 'Misses refused with 503 because the pacing queue was full or upstream asked us to back off',
    labelNames: ['reason'] as const,
    registers: [this.registry],
  });

  readonly redisErrors = new Counter({
    name: 'places_redis_errors_total',
    help: 'Failed or timed-out Redis operations',
    labelNames: ['op'] as const,
    registers: [this.registry],
  });

  /** Error replies only (OOM, NOPERM, MISCONF, …): a Redis that answers but refuses, which places_redis_errors_total mixes with timeouts. */
  readonly redisRefusals = new Counter({
    name: 'places_redis_refusals_total',
    help: 'Redis commands refused with an error reply (a full Redis with noeviction, an ACL, a failing disk), by kind: OOM, NOPERM, MISCONF, …',
    labelNames: ['kind'] as const,
    registers: [this.registry],
  });

  readonly redisConnected = new Gauge({
    name: 'places_redis_connected',
    help: '1 when the Redis connection is ready, 0 otherwise (absent in in-memory mode)',
    registers: [this.registry],
    // A group's sum would read 2, 3… and hide one worker without Redis: 1 only while every worker has it.
    aggregator: 'min',
  });

  /** 1 in each process: summed over a WEB_CONCURRENCY group's scrape, the workers that answered it. */
  readonly workers = new Gauge({
    name: 'places_workers',
    help: 'Processes whose numbers this scrape holds: 1, or with WEB_CONCURRENCY the workers that answered it',
    registers: [this.registry],
  });

  readonly l1Bytes = new Gauge({
    name: 'places_l1_bytes',
    help: 'Bytes held by the in-process L1 cache',
    registers: [this.registry],
    collect: () => {
      if (this.l1Source) this.l1Bytes.set(this.l1Source.bytes);
    },
  });

  readonly l1Entries = new Gauge({
    name: 'places_l1_entries',
    help: 'Entries held by the in-process L1 cache',
    registers: [this.registry],
    collect: () => {
      if (this.l1Source) this.l1Entries.set(this.l1Source.entries);
    },
  });

  readonly rateLimited = new Counter({
    name: 'places_rate_limited_total',
    help: 'Requests refused with 429 by the per-client rate limit, by kind (hit or miss)',
    labelNames: ['kind'] as const,
    registers: [this.registry],
  });

  readonly clientErrors = new Counter({
    name: 'places_http_client_errors_total',
    help: 'Connections closed for what the client sent or failed to send: timeout (headers or request not received in time: slowloris, slow body), headers_too_large, bad_request, reset',
    labelNames: ['reason'] as const,
    registers: [this.registry],
  });

  constructor() {
    collectDefaultMetrics({ register: this.registry, prefix: 'places_' });
    this.workers.set(1);
    if (inWorkerGroup()) this.stopClusterCollect = serveClusterCollect(this.registry);
  }

  onModuleDestroy(): void {
    this.stopClusterCollect?.();
  }

  /**
   * One series of a counter, for the hit path: inc() adds to a number, handed to prom-client when the
   * counter is read. prom-client's own inc() hashes and checks the labels on every call (~1 µs here,
   * twice per hit).
   */
  tally<T extends string>(counter: Counter<T>, labels: LabelValues<T>): CounterSeries {
    // Only a counter that hands the tallies over when it is read may have them (its collect).
    if ((counter as { collect?: unknown }).collect !== this.flushTallies) {
      throw new Error(`${(counter as unknown as { name: string }).name} is not created with collect: flushTallies`);
    }
    const t = new Tally(counter.labels(labels));
    this.tallies.push(t);
    return t;
  }

  /** The L1 gauges read `source` at scrape time, so the hit path never updates them. */
  observeL1(source: SizeSource): void {
    this.l1Source = source;
  }

  /** In in-memory mode there is no connection to report: the gauge is left out rather than stuck at 0. */
  withoutRedis(): void {
    this.registry.removeSingleMetric('places_redis_connected');
  }

  /**
   * REDIS_CLUSTER_NODES mode: places_redis_cluster_node_up{address,role} per node known from the
   * cluster's slot map, 1 when this instance's connection to it is ready, read at scrape time.
   */
  observeRedisCluster(source: () => Array<{ address: string; role: string; reachable: boolean }>): void {
    const gauge: Gauge<'address' | 'role'> = new Gauge({
      name: 'places_redis_cluster_node_up',
      help: 'Redis Cluster nodes known to this instance (masters, and replicas from the slot map): 1 when reachable (replicas are not connected: 0)',
      labelNames: ['address', 'role'] as const,
      registers: [this.registry],
      aggregator: 'min', // as places_redis_connected: up for the group only while up for every worker
      collect: () => {
        gauge.reset();
        for (const n of source()) gauge.set({ address: n.address, role: n.role }, n.reachable ? 1 : 0);
      },
    });
  }

  /** The Prometheus text exposition of this instance's registry, or of the whole WEB_CONCURRENCY group. */
  scrape(): Promise<string> {
    return inWorkerGroup() ? scrapeCluster() : this.registry.metrics();
  }
}
