import { MetricsService } from './metrics.service';

describe(MetricsService.name, () => {
  const line = (text: string, series: string) => text.split('\n').find((l) => l.startsWith(`${series} `));

  it('hands tallied counts to the counter whenever it is read, beside counts added the usual way', async () => {
    const m = new MetricsService();
    const hitsL1 = m.tally(m.cacheOutcomes, { outcome: 'hit', tier: 'l1' });
    const apiOk = m.tally(m.httpRequests, { route: '/api', method: 'GET', status: '200' });
    for (let i = 0; i < 3; i++) hitsL1.inc();
    m.cacheOutcomes.inc({ outcome: 'hit', tier: 'l1' });
    apiOk.inc();

    let text = await m.scrape();
    expect(line(text, 'places_cache_outcomes_total{outcome="hit",tier="l1"}')).toBe('places_cache_outcomes_total{outcome="hit",tier="l1"} 4');
    expect(line(text, 'places_http_requests_total{route="/api",method="GET",status="200"}')).toMatch(/ 1$/);

    hitsL1.inc();
    text = await m.scrape();
    expect(line(text, 'places_cache_outcomes_total{outcome="hit",tier="l1"}')).toMatch(/ 5$/);
    // Read without a scrape (as the tests read counters): the tally is handed over too.
    hitsL1.inc();
    const values = (await m.cacheOutcomes.get()).values;
    expect(values.find((v) => v.labels.outcome === 'hit' && v.labels.tier === 'l1')?.value).toBe(6);
  });

  it('refuses to tally a counter that would not hand the counts over when it is read', () => {
    const m = new MetricsService();
    expect(() => m.tally(m.upstreamRequests, { endpoint: 'search', status: '200' })).toThrow(/places_upstream_requests_total/);
  });

  it('shows a tallied series only once it has counted something, as prom-client does', async () => {
    const m = new MetricsService();
    m.tally(m.cacheOutcomes, { outcome: 'hit', tier: 'l2' });
    expect(await m.scrape()).not.toContain('tier="l2"');
  });
});
