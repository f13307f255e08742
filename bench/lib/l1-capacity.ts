/**
 * (i) L1 capacity: how many typical answers the default L1 really keeps. `answers` distinct answers
 * (0.5-1.5 KB of JSON, test/support/typical-answers.ts) are written to Redis as the service stores
 * them; the service, started as `npm start` starts it (its node flags) with the default L1, is asked
 * each once (clients that take gzip, as browsers and HTTP libraries do), then a random sample of
 * them: the share the L1 answers (places_cache_outcomes_total{outcome="hit",tier="l1"}), the L1's
 * entries and bytes, and the process's RSS.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { RedisClientType } from 'redis';
import { loadConfig } from '../../src/config/configuration';
import { seedTypical, typicalApiPath } from '../../test/support/typical-answers';
import { load } from './load';
import { ROOT, Target } from './procs';
import { prng } from './questions';

export interface L1Capacity {
  answers: number;
  sample: number;
  /** of the sample, answered from L1 */
  l1Hits: number;
  entries: number;
  bytes: number;
  rssMB: number;
  heapMB: number;
  fillRps: number;
}

/** The node flags of `npm start` (package.json). */
export function startFlags(): string[] {
  const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { scripts: { start: string } };
  return pkg.scripts.start.split(/\s+/).filter((w) => w.startsWith('--'));
}

async function metricsOf(t: Target): Promise<(name: string, labels?: string) => number> {
  const text = await (await fetch(`${t.url}/metrics`)).text();
  return (name, labels = '') => {
    const line = text.split('\n').find((l) => l.startsWith(`${name}${labels} `));
    return line === undefined ? 0 : Number(line.slice(line.lastIndexOf(' ') + 1));
  };
}

export async function l1Capacity(opts: {
  client: RedisClientType;
  answers: number;
  sample: number;
  connections: number;
  log: (msg: string) => void;
  start: (env: Record<string, string>, nodeArgs: string[]) => Promise<Target>;
}): Promise<L1Capacity> {
  await opts.client.flushDb();
  const started = Date.now();
  // The service's defaults: its TTL, how long Redis keeps an entry past it, its compression threshold.
  const defaults = loadConfig({}).cache;
  await seedTypical(opts.client, 0, opts.answers, {
    ttlSeconds: defaults.ttlSeconds,
    keepSeconds: Math.max(defaults.staleIfErrorSeconds, defaults.staleWhileRevalidateSeconds),
    compressMinBytes: defaults.compressMinBytes,
  });
  opts.log(`(i) seeded ${opts.answers} typical answers in ${Date.now() - started} ms`);
  const paths = Array.from({ length: opts.answers }, (_, i) => typicalApiPath(i));
  const t = await opts.start({}, startFlags());
  try {
    const gzip = { 'Accept-Encoding': 'gzip' };
    const fill = await load(t.url, { connections: opts.connections, amount: paths.length, paths, headers: gzip });
    const random = prng(21);
    const sample = Array.from({ length: opts.sample }, () => paths[Math.floor(random() * paths.length)]);
    const hitsL1 = '{outcome="hit",tier="l1"}';
    const before = (await metricsOf(t))('places_cache_outcomes_total', hitsL1);
    await load(t.url, { connections: 4, amount: sample.length, paths: sample, headers: gzip });
    await new Promise((r) => setTimeout(r, 2000));
    const m = await metricsOf(t);
    const result: L1Capacity = {
      answers: opts.answers,
      sample: sample.length,
      l1Hits: m('places_cache_outcomes_total', hitsL1) - before,
      entries: m('places_l1_entries'),
      bytes: m('places_l1_bytes'),
      rssMB: m('places_process_resident_memory_bytes') / 1024 / 1024,
      heapMB: m('places_nodejs_heap_size_used_bytes') / 1024 / 1024,
      fillRps: fill.rps,
    };
    opts.log(`(i) ${JSON.stringify(result)}`);
    return result;
  } finally {
    await t.stop();
  }
}

export function l1CapacityChecks(c: L1Capacity, smoke: boolean): Array<{ name: string; measured: string; target: string; met: boolean; invariant: boolean }> {
  const share = c.l1Hits / c.sample;
  const mib = (n: number) => `${(n / 1024 / 1024).toFixed(1)} MiB`;
  return [
    {
      name: `(i) L1 capacity: of ${c.sample} random answers of ${c.answers} asked once, answered from L1`,
      measured: `${(share * 100).toFixed(1)} % (${c.entries} entries, ${mib(c.bytes)} counted)`,
      target: '≥ 95 %',
      met: share >= 0.95,
      // with 2,000 answers the default L1 keeps them all: anything less is wrong accounting or a bug
      invariant: smoke,
    },
    { name: `(i) L1 capacity: RSS after ${c.answers} answers`, measured: `${c.rssMB.toFixed(0)} MB (heap used ${c.heapMB.toFixed(0)} MB)`, target: '< 400 MB', met: c.rssMB < 400, invariant: false },
  ];
}
