/**
 * Load generation. Throughput runs use autocannon's programmatic API; latencies are taken from its
 * per-response event (float ms) rather than its histogram, which has 1 ms resolution. Exact request
 * sequences (the noisy stream, the stampede) use `drive`, a plain keep-alive http client that sends
 * each path of a list exactly once.
 */
import autocannon from 'autocannon';
import http from 'node:http';
import { performance } from 'node:perf_hooks';
import { cpus } from 'node:os';
import { machineBusyMicros, procCpuMicros, procRssBytes, Target } from './procs';

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
  /**
   * Share of the machine (all cores) used during the run by processes other than the server, this
   * driver (load generator) and the benchmark's Redis: other people's work, which makes a run noisy.
   */
  othersPct: number;
}

/** Processes of the benchmark itself besides the server and this driver (its Redis), for othersPct. */
const ownPids: number[] = [];
let beforeRun: () => Promise<unknown> = async () => undefined;
/** What to do before every measured run (run.ts: wait for a quiet machine). */
export function setBeforeRun(fn: () => Promise<unknown>): void {
  beforeRun = fn;
}
export function countAsOwn(pid: number): void {
  ownPids.push(pid);
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

/** Share of the machine (%) used by other processes over the next `ms`, while the benchmark is idle. */
export async function othersNow(ms = 1000): Promise<number> {
  const ours = () => {
    const self = process.cpuUsage();
    return self.user + self.system + ownPids.reduce((a, pid) => a + procCpuMicros(pid), 0);
  };
  const [busy0, own0] = [machineBusyMicros(), ours()];
  await new Promise((r) => setTimeout(r, ms));
  const [busy1, own1] = [machineBusyMicros(), ours()];
  return (100 * Math.max(0, busy1 - busy0 - (own1 - own0))) / (ms * 1000 * cpus().length);
}

/**
 * On a shared machine: waits (up to `maxS`) until other processes use less than `pct` % of it, so
 * that a measured run does not start in the middle of someone else's build. Returns what it saw last.
 */
export async function untilQuiet(pct: number, maxS: number, note: (msg: string) => void): Promise<number> {
  const deadline = Date.now() + maxS * 1000;
  let seen = await othersNow();
  if (seen > pct) note(`others use ${seen.toFixed(0)} % of the machine; waiting up to ${maxS} s for < ${pct} %`);
  while (seen > pct && Date.now() < deadline) seen = await othersNow();
  return seen;
}

/** Warm-up, then one measured run with the server's CPU time read around it. */
export async function measure(target: Target, opts: LoadOptions, warmupS: number): Promise<Measured> {
  await beforeRun();
  if (warmupS > 0) await load(target.url, { ...opts, amount: undefined, durationS: warmupS });
  const ours = () => {
    const self = process.cpuUsage();
    return self.user + self.system + ownPids.reduce((a, pid) => a + procCpuMicros(pid), 0);
  };
  const started = performance.now();
  const [busy0, own0, cpu0] = [machineBusyMicros(), ours(), await target.cpuMicros()];
  const run = await load(target.url, opts);
  const [busy1, own1, cpu1] = [machineBusyMicros(), ours(), await target.cpuMicros()];
  const wallUs = (performance.now() - started) * 1000;
  const cpuUs = cpu1 - cpu0;
  const others = Math.max(0, busy1 - busy0 - (own1 - own0) - cpuUs);
  const rssMB = procRssBytes(target.pid) / 1024 ** 2;
  return {
    target: target.name,
    ...run,
    cpuUs,
    cpuUsPerReq: run.requests > 0 ? cpuUs / run.requests : NaN,
    rssMB,
    othersPct: (100 * others) / (wallUs * cpus().length),
  };
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
