/**
 * Load generation. Saturating runs use Debian's `wrk` when it is installed: written in C, it needs a
 * fraction of the CPU autocannon does per request, so on this 2-core machine the server under test
 * gets a core of its own and its throughput is its own (with autocannon, the driver's core ran out
 * first at ~8,000 req/s, capping every fast target at the same figure). Without wrk, and for
 * fixed-rate and counted runs (which wrk cannot do), autocannon's programmatic API; its latencies are
 * taken from its per-response event (float ms) rather than its 1 ms histogram. Exact request
 * sequences (the noisy stream, the stampede) use `drive`, a plain keep-alive http client that sends
 * each path of a list exactly once.
 */
import autocannon from 'autocannon';
import { execFile } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { cpus, tmpdir } from 'node:os';
import { hasCommand, machineBusyMicros, procCpuMicros, procRssBytes, reapedChildrenCpuMicros, Target } from './procs';
import { prng } from './questions';

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

/** This driver's CPU (with the wrk runs it waited for) and that of the benchmark's own processes, µs. */
function driverMicros(): number {
  const self = process.cpuUsage();
  return self.user + self.system + reapedChildrenCpuMicros() + ownPids.reduce((a, pid) => a + procCpuMicros(pid), 0);
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
  /** the request targets: one (every request the same), or several, taken in turn or at random */
  paths: readonly string[];
  /** 'random': each request one of `paths` at random (seeded); default: in turn */
  order?: 'random' | 'cycle';
}

/** Whether `wrk` is on PATH (then saturating runs use it). */
export const HAS_WRK = hasCommand('wrk');

/** Which load generator a run with these options uses. */
export function generatorFor(opts: LoadOptions): 'wrk' | 'autocannon' {
  return HAS_WRK && opts.overallRate === undefined && opts.amount === undefined ? 'wrk' : 'autocannon';
}

/** One run against `url`: wrk when it can (see the top of this file), else autocannon. */
export function load(url: string, opts: LoadOptions): Promise<LoadRun> {
  return generatorFor(opts) === 'wrk' ? wrkLoad(url, opts) : autocannonLoad(url, opts);
}

/**
 * wrk's script: paths are read from a file (one per line) and picked in turn or at random (seeded)
 * for each request; without a file the request is wrk's static one, the cheapest it can send. done()
 * prints the summary as one JSON line (latencies in µs).
 */
const WRK_SCRIPT = `
local paths = {}
local random = false
local i = 0
function init(args)
  if args[1] ~= nil then
    for line in io.lines(args[1]) do paths[#paths + 1] = line end
    random = args[2] == "random"
    math.randomseed(42)
    request = function()
      if random then
        return wrk.format(nil, paths[math.random(#paths)])
      end
      i = i % #paths + 1
      return wrk.format(nil, paths[i])
    end
  end
end
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format('{"requests":%d,"us":%d,"status":%d,"errors":%d,"p50":%d,"p90":%d,"p99":%d,"max":%d,"mean":%f}\\n',
    summary.requests, summary.duration, e.status, e.connect + e.read + e.write + e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max, latency.mean))
end
`;

let wrkDir: string | undefined;
let wrkRuns = 0;

function wrkLoad(url: string, opts: LoadOptions): Promise<LoadRun> {
  const script = join((wrkDir ??= mkdtempSync(join(tmpdir(), 'places-bench-wrk-'))), 'run.lua');
  if (wrkRuns++ === 0) writeFileSync(script, WRK_SCRIPT);
  const args = ['-t', '1', '-c', String(opts.connections), '-d', `${Math.max(1, Math.round(opts.durationS ?? 1))}s`, '--timeout', '10s', '-s', script];
  for (const [name, value] of Object.entries(opts.headers ?? {})) args.push('-H', `${name}: ${value}`);
  // 'random' over one path still goes through the script: a hot-key run compared with a random-key
  // run then costs wrk the same per request.
  if (opts.paths.length === 1 && opts.order !== 'random') {
    args.push(`${url}${opts.paths[0]}`);
  } else {
    const pathsFile = join(wrkDir, `paths-${wrkRuns}.txt`);
    writeFileSync(pathsFile, `${opts.paths.join('\n')}\n`);
    args.push(url, '--', pathsFile, opts.order ?? 'cycle');
  }
  return new Promise((resolve, reject) => {
    execFile('wrk', args, { maxBuffer: 1 << 20 }, (err, stdout, stderr) => {
      if (err) return reject(new Error(`wrk ${args.join(' ')}: ${err.message} ${stderr}`));
      const json = stdout.trim().split('\n').pop() ?? '';
      let r: { requests: number; us: number; status: number; errors: number; p50: number; p90: number; p99: number; max: number; mean: number };
      try {
        r = JSON.parse(json) as typeof r;
      } catch {
        return reject(new Error(`wrk printed no summary: ${stdout}`));
      }
      const ok = r.requests - r.status;
      const seconds = r.us / 1e6;
      resolve({
        requests: r.requests,
        ok,
        non2xx: r.status,
        errors: r.errors,
        seconds,
        rps: ok / seconds,
        statuses: r.status > 0 ? { '2xx/3xx': ok, other: r.status } : { '2xx/3xx': ok },
        p50: r.p50 / 1000,
        p90: r.p90 / 1000,
        p99: r.p99 / 1000,
        max: r.max / 1000,
        mean: r.mean / 1000,
      });
    });
  });
}

/** The request target of each autocannon request. */
function pathSource(opts: LoadOptions): () => string {
  const { paths } = opts;
  if (paths.length === 1) return () => paths[0];
  if (opts.order === 'random') {
    const random = prng(42);
    return () => paths[Math.floor(random() * paths.length)];
  }
  let i = 0;
  return () => paths[i++ % paths.length];
}

function autocannonLoad(url: string, opts: LoadOptions): Promise<LoadRun> {
  const nextPath = pathSource(opts);
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
              req.path = nextPath();
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
  const ours = driverMicros;
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
  return measureWindow(target, opts);
}

/**
 * Several servers measured side by side: all of them up at once, each warmed, then measured in
 * `slices` short runs taken in turn (the order reversed every pass), until each has had
 * `opts.durationS`; each target's slices, in order. Why: on this shared machine a server's cost moves
 * in stretches (up to ~1.8×, for seconds to minutes); measured one after another in whole runs, a
 * stretch lands on whichever server ran in it. The figures are in docs/benchmark.md, "How it measures".
 */
export async function measureSideBySide(targets: readonly Target[], opts: LoadOptions, warmupS: number, slices: number): Promise<Measured[][]> {
  if (warmupS > 0) for (const t of targets) await load(t.url, { ...opts, amount: undefined, durationS: warmupS });
  const slice = { ...opts, durationS: (opts.durationS ?? 10) / slices };
  const parts: Measured[][] = targets.map(() => []);
  for (let pass = 0; pass < slices; pass++) {
    await beforeRun();
    const order = targets.map((_, i) => i);
    if (pass % 2 === 1) order.reverse();
    for (const i of order) parts[i].push(await measureWindow(targets[i], slice));
  }
  return parts;
}

/** One measured run, the server's CPU time read around it. */
async function measureWindow(target: Target, opts: LoadOptions): Promise<Measured> {
  const ours = driverMicros;
  const started = performance.now();
  const [busy0, own0, cpu0] = [machineBusyMicros(), ours(), await target.cpuMicros()];
  const run = await load(target.url, opts);
  const [busy1, own1, cpu1] = [machineBusyMicros(), ours(), await target.cpuMicros()];
  const wallUs = (performance.now() - started) * 1000;
  const cpuUs = cpu1 - cpu0;
  const others = Math.max(0, busy1 - busy0 - (own1 - own0) - cpuUs);
  const rssMB = (target.rssBytes?.() ?? procRssBytes(target.pid)) / 1024 ** 2;
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
