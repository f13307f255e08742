/**
 * Load generation. Throughput runs use autocannon's programmatic API; latencies are taken from its
 * per-response event (float ms) rather than its histogram, which has 1 ms resolution. Exact request
 * sequences (the noisy stream, the stampede) use `drive`, a plain keep-alive http client that sends
 * each path of a list exactly once.
 */
import autocannon from 'autocannon';
import http from 'node:http';
import { performance } from 'node:perf_hooks';
import { procRssBytes, Target } from './procs';

export interface Latency {
  p50: number;
  p90: number;
  p99: number;
  max: number;
  mean: number;
}

export interface LoadRun extends Latency {
  requests: number;
  ok: number;
  non2xx: number;
  errors: number;
  seconds: number;
  /** 2xx answers per second */
  rps: number;
  statuses: Record<string, number>;
}

export interface Measured extends LoadRun {
  target: string;
  /** server CPU over the measured window, µs */
  cpuUs: number;
  cpuUsPerReq: number;
  /** server resident memory after the run */
  rssMB: number;
}

export function latencyOf(samples: ArrayLike<number>): Latency {
  const sorted = Float64Array.from(samples).sort();
  const n = sorted.length;
  const at = (q: number) => (n === 0 ? NaN : sorted[Math.min(n - 1, Math.max(0, Math.ceil(q * n) - 1))]);
  let sum = 0;
  for (let i = 0; i < n; i++) sum += sorted[i];
  return { p50: at(0.5), p90: at(0.9), p99: at(0.99), max: n === 0 ? NaN : sorted[n - 1], mean: n === 0 ? NaN : sum / n };
}

export interface LoadOptions {
  connections: number;
  durationS?: number;
  amount?: number;
  /** requests per second over all connections (fixed-rate load) */
  overallRate?: number;
  headers?: Record<string, string>;
  /** the request target of each request (called once per request) */
  nextPath: () => string;
}

/** One autocannon run against `url`. */
export function load(url: string, opts: LoadOptions): Promise<LoadRun> {
  const samples: number[] = [];
  const statuses: Record<string, number> = {};
  let ok = 0;
  const started = performance.now();
  return new Promise((resolve, reject) => {
    const instance = autocannon(
      {
        url,
        connections: opts.connections,
        // autocannon rejects keys that are present but undefined
        ...(opts.amount !== undefined ? { amount: opts.amount } : { duration: opts.durationS }),
        ...(opts.overallRate !== undefined ? { overallRate: opts.overallRate } : {}),
        ...(opts.headers !== undefined ? { headers: opts.headers } : {}),
        timeout: 10,
        requests: [
          {
            method: 'GET',
            setupRequest: (req) => {
              req.path = opts.nextPath();
              return req;
            },
          },
        ],
      },
      (err, result) => {
        if (err) return reject(err);
        const seconds = (performance.now() - started) / 1000;
        resolve({
          requests: samples.length,
          ok,
          non2xx: samples.length - ok,
          errors: result.errors,
          seconds,
          rps: ok / seconds,
          statuses,
          ...latencyOf(samples),
        });
      },
    );
    instance.on('response', (_client: unknown, status: number, _bytes: number, ms: number) => {
      samples.push(ms);
      statuses[status] = (statuses[status] ?? 0) + 1;
      if (status >= 200 && status < 300) ok++;
    });
  });
}

/** Warm-up, then one measured run with the server's CPU time read around it. */
export async function measure(target: Target, opts: LoadOptions, warmupS: number): Promise<Measured> {
  if (warmupS > 0) await load(target.url, { ...opts, amount: undefined, durationS: warmupS });
  const cpu0 = await target.cpuMicros();
  const run = await load(target.url, opts);
  const cpu1 = await target.cpuMicros();
  const cpuUs = cpu1 - cpu0;
  const rssMB = procRssBytes(target.pid) / 1024 ** 2;
  return { target: target.name, ...run, cpuUs, cpuUsPerReq: run.requests > 0 ? cpuUs / run.requests : NaN, rssMB };
}

export interface Answer {
  path: string;
  status: number;
  ms: number;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
}

/**
 * One GET. `ms` runs from the moment the request is handed to the socket ('finish') to its answer's
 * last byte: when many are started at once, the time this process spends issuing the others before
 * this one goes out is not counted against the server.
 */
export function get(url: string, path: string, agent: http.Agent, headers: Record<string, string> = {}): Promise<Answer> {
  let started = performance.now();
  return new Promise((resolve, reject) => {
    const req = http.get(`${url}${path}`, { agent, headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () =>
        resolve({ path, status: res.statusCode ?? 0, ms: performance.now() - started, headers: res.headers, body: Buffer.concat(chunks) }),
      );
      res.on('error', reject);
    });
    req.on('finish', () => (started = performance.now()));
    req.on('error', reject);
  });
}

/** Sends every path once, `concurrency` at a time, in order; resolves every answer (in path order). */
export async function drive(url: string, paths: readonly string[], concurrency: number, agent?: http.Agent): Promise<Answer[]> {
  const own = agent ?? new http.Agent({ keepAlive: true, maxSockets: concurrency });
  const out: Answer[] = new Array(paths.length);
  let next = 0;
  const worker = async () => {
    while (next < paths.length) {
      const i = next++;
      out[i] = await get(url, paths[i], own);
    }
  };
  try {
    await Promise.all(Array.from({ length: Math.min(concurrency, paths.length) }, worker));
  } finally {
    if (!agent) own.destroy();
  }
  return out;
}
