import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Histogram, Registry } from 'prom-client';
import { CountingHistogram } from './counting-histogram';

describe(CountingHistogram.name, () => {
  const BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];
  const HELP = 'Time from request to the last byte of the answer, by route';

  /** The same observations into a prom-client Histogram and a CountingHistogram, each in its own registry. */
  function both(observations: Array<[string, number]>) {
    const promRegistry = new Registry();
    const prom = new Histogram({ name: 'h_seconds', help: HELP, labelNames: ['route'], buckets: BUCKETS, registers: [promRegistry] });
    const oursRegistry = new Registry();
    const ours = new CountingHistogram('h_seconds', HELP, 'route', BUCKETS, oursRegistry);
    const bound = new Map<string, ReturnType<typeof ours.labels>>();
    for (const [route, v] of observations) {
      prom.labels({ route }).observe(v);
      if (!bound.has(route)) bound.set(route, ours.labels(route));
      bound.get(route)!.observe(v);
    }
    return { promRegistry, oursRegistry, prom, ours };
  }

  it('gives the registry the same text and samples as a prom-client Histogram fed the same values', async () => {
    const values: Array<[string, number]> = [];
    // on every bound, between bounds, below the first, above the last; two routes interleaved
    for (const b of BUCKETS) values.push(['/api', b], ['/search', b * 0.99]);
    values.push(['/api', 0], ['/api', 31], ['/reverse', 1e-9], ['/search', 1234.5], ['/api', 0.00123]);
    const { promRegistry, oursRegistry, prom, ours } = both(values);

    const text = await oursRegistry.metrics();
    expect(text).toBe(await promRegistry.metrics());
    expect(text).toContain('h_seconds_bucket{le="0.0005",route="/api"} 2');
    expect(text).toContain('h_seconds_count{route="/search"} 16');
    expect(await ours.get()).toEqual(await prom.get());
  });

  it('shows a series only once it has observed something, and nothing after a reset, as prom-client does', async () => {
    const { promRegistry, oursRegistry, prom, ours } = both([['/api', 0.002]]);
    ours.labels('/status');
    expect(await oursRegistry.metrics()).toBe(await promRegistry.metrics());
    expect(await oursRegistry.metrics()).not.toContain('/status');

    prom.reset();
    ours.reset();
    expect(await oursRegistry.metrics()).toBe(await promRegistry.metrics());
    expect(await oursRegistry.metrics()).not.toContain('h_seconds_bucket');
  });

  it('leaves out a value that is not a finite number instead of throwing on the request path', async () => {
    const { oursRegistry, ours } = both([]);
    const s = ours.labels('/api');
    s.observe(Number.NaN);
    s.observe(Number.POSITIVE_INFINITY);
    s.observe(0.003);
    expect(await oursRegistry.metrics()).toContain('h_seconds_count{route="/api"} 1');
  });

  it('is used with the exact prom-client version it was compared with (package.json pins it)', () => {
    const pkg = JSON.parse(readFileSync(join(__dirname, '../../package.json'), 'utf8')) as { dependencies: Record<string, string> };
    const installed = JSON.parse(readFileSync(require.resolve('prom-client/package.json'), 'utf8')) as { version: string };
    expect(pkg.dependencies['prom-client']).toBe(installed.version);
  });
});
