import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { RedisConnectionService } from '../src/cache/redis-connection.service';
import { eventually, RunningApp, startApp } from './support/app-harness';
import { FakeNominatim } from './support/fake-nominatim';
import { rawGet } from './support/raw-http';
import { RedisProcess, startRedis } from './support/redis-server';

const ROOT = join(__dirname, '..');
const ALERTS = join(ROOT, 'deploy', 'prometheus', 'alerts.yml');
const ALERTS_TEST = join(ROOT, 'deploy', 'prometheus', 'alerts.test.yml');
const GRAFANA = join(ROOT, 'deploy', 'grafana', 'places-cache.json');
const METRIC = /\bplaces_[a-zA-Z0-9_:]+/g;

/** Every PromQL expression of the Grafana dashboard: panel targets and template queries. */
function grafanaExpressions(): string[] {
  const found: string[] = [];
  const walk = (v: unknown): void => {
    if (Array.isArray(v)) v.forEach(walk);
    else if (v !== null && typeof v === 'object') {
      for (const [k, x] of Object.entries(v)) {
        if ((k === 'expr' || k === 'query' || k === 'definition') && typeof x === 'string') found.push(x);
        else walk(x);
      }
    }
  };
  walk(JSON.parse(readFileSync(GRAFANA, 'utf8')));
  return found;
}

/** promtool from Debian's prometheus package (.ci/run installs it); missing is a failure, never a skip. */
function promtool(args: string[]): { status: number | null; output: string } {
  const r = spawnSync('promtool', args, { cwd: join(ROOT, 'deploy', 'prometheus'), encoding: 'utf8', timeout: 60_000 });
  if (r.error && (r.error as NodeJS.ErrnoException).code === 'ENOENT') {
    throw new Error('promtool is missing: this test needs Debian\'s prometheus package (apt-get install -y prometheus; .ci/run installs it)');
  }
  if (r.error) throw r.error;
  return { status: r.status, output: `${r.stdout}${r.stderr}` };
}

/**
 * Issue 21, Grafana and alerts: every metric deploy/ names is one a booted service exports, and the
 * rules load in promtool and fire on the series they are meant for (alerts.test.yml).
 */
describe('deploy/grafana and deploy/prometheus (e2e)', () => {
  let upstream: FakeNominatim;
  let redis: RedisProcess;
  let svc: RunningApp;
  let exported: Set<string>;

  beforeAll(async () => {
    upstream = new FakeNominatim();
    await upstream.start();
    redis = await startRedis();
    svc = await startApp({ NOMINATIM_URL: upstream.url, REDIS_URL: redis.url });
    await eventually(() => svc.app.get(RedisConnectionService).state === 'ready');
    // One miss and one hit, so that labelled series exist too.
    await rawGet(`${svc.url}/search?q=berlin&format=json`);
    await rawGet(`${svc.url}/search?q=berlin&format=json`);
    const text = (await rawGet(`${svc.url}/metrics`)).body.toString('utf8');
    exported = new Set();
    for (const m of text.matchAll(/^# TYPE (\S+) (\S+)$/gm)) {
      const [, name, type] = m;
      exported.add(name);
      if (type === 'histogram') for (const s of ['_bucket', '_sum', '_count']) exported.add(`${name}${s}`);
      if (type === 'summary') for (const s of ['_sum', '_count']) exported.add(`${name}${s}`);
    }
  });

  afterAll(async () => {
    await svc?.close();
    await upstream?.stop();
    await redis?.stop();
  });

  it('the scrape has the metrics the dashboards draw (a sanity check of the check)', () => {
    expect(exported.has('places_cache_outcomes_total')).toBe(true);
    expect(exported.has('places_cache_request_duration_seconds_bucket')).toBe(true);
    expect(exported.has('places_upstream_budget_requests_per_second')).toBe(true);
    expect(exported.has('places_no_such_metric')).toBe(false);
  });

  it('every metric the alert rules name is one the service exports', () => {
    const named = [...new Set(readFileSync(ALERTS, 'utf8').match(METRIC) ?? [])];
    expect(named.length).toBeGreaterThanOrEqual(6);
    expect(named.filter((n) => !exported.has(n))).toEqual([]);
  });

  it('every metric the Grafana dashboard names is one the service exports', () => {
    const expressions = grafanaExpressions();
    expect(expressions.length).toBeGreaterThanOrEqual(15);
    const named = [...new Set(expressions.flatMap((e) => e.match(METRIC) ?? []))];
    expect(named.length).toBeGreaterThanOrEqual(10);
    expect(named.filter((n) => !exported.has(n))).toEqual([]);
  });

  it('promtool accepts the rules, each alert has a summary and a runbook line, and they fire as alerts.test.yml says', () => {
    const check = promtool(['check', 'rules', ALERTS]);
    expect(check.output).toContain('SUCCESS: 7 rules found');
    expect(check.status).toBe(0);
    const alerts = readFileSync(ALERTS, 'utf8').split(/\n\s+- alert: /).slice(1);
    expect(alerts).toHaveLength(7);
    for (const a of alerts) {
      expect(a).toMatch(/\n\s+summary: "[^"]+"/);
      expect(a).toMatch(/\n\s+runbook: "docs\/operations\.md#[a-z0-9-]+: [^\n]+"/);
    }
    const unit = promtool(['test', 'rules', ALERTS_TEST]);
    expect(unit.output).toContain('SUCCESS');
    expect(unit.status).toBe(0);
  });
});
