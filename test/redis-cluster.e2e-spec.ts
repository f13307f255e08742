import { createClient } from 'redis';
import { clusterSlot } from '../src/cache/cluster-slot';
import { clusterState } from '../src/cache/redis-cluster';
import { RedisConnectionService } from '../src/cache/redis-connection.service';
import { PlacesCacheService } from '../src/places/cache/places-cache.service';
import { eventually, RunningApp, startApp } from './support/app-harness';
import { FakeNominatim, FakeRequest } from './support/fake-nominatim';
import { rawGet } from './support/raw-http';
import { RedisClusterProcess, startRedisCluster } from './support/redis-cluster';
import { describeSamples, startTraffic } from './support/traffic';

/**
 * Issue 22: the gateway on a real Redis Cluster (3 masters, 3 replicas, started here): two instances
 * share it for answers, fill locks, pacing, pub/sub and purge; a master killed under load fails over.
 */
const TOKEN = 'cluster-admin-token-0123456789';
const MAX_RPS = 2;
/**
 * What two instances pacing through the cluster's shared slots leave between arrivals at the fake, at
 * least. The pacer spaces the starts of requests (slots 525 ms apart, a start at most 25 ms late: 500 ms);
 * here both instances, the fake and the client share this test's event loop, so a request can reach
 * the fake's handler a few ms after its start (seen: 492.7 ms in CI). 95 % of the interval allows that
 * and still fails pacing that is not shared, whose two instances start together (gaps near 0).
 * Arrivals at least a whole second apart at 1/s, the public server's rule, are pacing.e2e-spec's.
 */
const MIN_GAP_MS = 0.95 * (1000 / MAX_RPS);

jest.setTimeout(180_000);

describe('Redis Cluster (e2e)', () => {
  let fake: FakeNominatim;
  let cluster: RedisClusterProcess;
  let a: RunningApp;
  let b: RunningApp;

  beforeAll(async () => {
    fake = new FakeNominatim({ latencyMs: 20 });
    await fake.start();
    cluster = await startRedisCluster();
    const env = {
      REDIS_CLUSTER_NODES: cluster.seeds,
      NOMINATIM_URL: fake.url,
      NOMINATIM_MAX_RPS: String(MAX_RPS),
      ADMIN_TOKEN: TOKEN,
      LOG_LEVEL: 'info',
      RATE_LIMIT_ENABLED: 'true',
      RATE_LIMIT_MISSES: '100000',
      RATE_LIMIT_HITS: '1000000',
    };
    // One at a time: the log capture replaces a process-wide destination while an app is built.
    a = await startApp(env, { captureLogs: true });
    b = await startApp({ ...env, LOG_LEVEL: 'warn' });
    await eventually(() => [a, b].every((svc) => svc.app.get(RedisConnectionService).state === 'ready'), 30_000);
  });

  afterAll(async () => {
    await Promise.all([a?.close(), b?.close()]);
    await fake?.stop();
    await cluster?.stop();
  });

  const q = (text: string) => `/search?q=${encodeURIComponent(text)}&format=json`;
  /** The canonical key of q(text) (the defaults Nominatim applies are part of it). */
  const keyOf = (text: string) => `places:v1:search:addressdetails=0&extratags=0&format=json&limit=10&namedetails=0&q=${encodeURIComponent(text.toLowerCase())}`;
  const upstreamFor = (text: string) => fake.requests.filter((r) => r.query.get('q') === text.toLowerCase());
  /** Redis names of the answers to `text`, on each running master. */
  const placedOn = async (pattern: string) => {
    const masters = await cluster.masters();
    return Promise.all(masters.map(async (m) => ({ port: m.port, keys: await cluster.keysOn(m.port, pattern) })));
  };

  /** The port of the master that serves `slot`, as a running master reports it (CLUSTER SLOTS). */
  const slotOwner = async (slot: number): Promise<number> => {
    const probe = createClient({ socket: { host: '127.0.0.1', port: (await cluster.masters())[0].port } });
    probe.on('error', () => undefined);
    await probe.connect();
    try {
      const shards = await probe.clusterSlots();
      return shards.find((s) => s.from <= slot && slot <= s.to)!.master.port;
    } finally {
      await probe.disconnect();
    }
  };

  it('names the cluster in the startup log, and shows its nodes in /health and /metrics', async () => {
    const seeds = cluster.servers.map((s) => `redis://127.0.0.1:${s.port}`).join(', ');
    expect(a.logs.map((l) => l.msg)).toContain(`Connecting to Redis Cluster through seeds ${seeds}`);

    const health = JSON.parse((await rawGet(`${a.url}/health/ready`)).body.toString()) as { details: { redis: { status: string; mode: string; nodes: Array<{ role: string; reachable: boolean }> } } };
    expect(health.details.redis).toMatchObject({ status: 'up', mode: 'cluster' });
    await eventually(async () => {
      const h = JSON.parse((await rawGet(`${a.url}/health/ready`)).body.toString()) as typeof health;
      return h.details.redis.nodes.filter((n) => n.role === 'replica' && n.reachable).length === 3;
    });
    const masters = (await cluster.masters()).map((m) => m.address).sort();
    const fresh = JSON.parse((await rawGet(`${a.url}/health/ready`)).body.toString()) as typeof health;
    expect(fresh.details.redis.nodes.filter((n) => n.role === 'master' && n.reachable).map((n) => (n as unknown as { address: string }).address).sort()).toEqual(masters);

    const metrics = (await rawGet(`${a.url}/metrics`)).body.toString();
    for (const m of masters) expect(metrics).toContain(`places_redis_cluster_node_up{address="${m}",role="master"} 1`);
    expect(metrics).toMatch(/places_redis_connected 1/);
  });

  it('lists each master once after a slot moved to another master (it then serves two slot ranges)', async () => {
    const text = 'moved slot';
    const slot = clusterSlot(`{${keyOf(text).slice('places:v1:search:'.length)}}`);
    const from = await slotOwner(slot);
    const masters = await cluster.masters();
    const to = masters.find((m) => m.port !== from)!;
    const admins = await Promise.all(
      masters.map(async (m) => {
        const c = createClient({ socket: { host: '127.0.0.1', port: m.port } });
        c.on('error', () => undefined);
        await c.connect();
        return c;
      }),
    );
    try {
      // The slot holds no key yet: it can be handed over without migrating anything.
      const toId = String(await admins[masters.indexOf(to)].sendCommand(['CLUSTER', 'MYID']));
      for (const c of admins) await c.sendCommand(['CLUSTER', 'SETSLOT', String(slot), 'NODE', toId]);
      // The app learns the new map from a MOVED answer to a command on that slot.
      expect((await rawGet(`${a.url}${q(text)}`)).status).toBe(200);
      await eventually(async () => (await slotOwner(slot)) === to.port);
      type Health = { details: { redis: { nodes: Array<{ role: string; address: string }> } } };
      const listed = async () => {
        const h = JSON.parse((await rawGet(`${a.url}/health/ready`)).body.toString()) as Health;
        return h.details.redis.nodes.filter((n) => n.role === 'master').map((n) => n.address).sort();
      };
      // Asked again until the app routes the slot to its new owner, then each master once.
      await eventually(async () => (await rawGet(`${a.url}${q(text)}`)).headers['x-cache'] === 'HIT');
      expect(await listed()).toEqual(masters.map((m) => m.address).sort());
    } finally {
      await Promise.all(admins.map((c) => c.disconnect()));
    }
  });

  it('MISS then HIT, across instances: the second instance finds the answer in the cluster', async () => {
    const first = await rawGet(`${a.url}${q('Cluster Berlin')}`);
    expect([first.status, first.headers['x-cache']]).toEqual([200, 'MISS']);
    const second = await rawGet(`${b.url}${q('Cluster Berlin')}`);
    expect([second.status, second.headers['x-cache']]).toEqual([200, 'HIT']);
    expect(second.body.equals(first.body)).toBe(true);
    expect(upstreamFor('Cluster Berlin')).toHaveLength(1);
    // Stored under a hash-tagged name: the question is the tag.
    const found = (await placedOn('places:v1:search:{*cluster%20berlin*}')).flatMap((p) => p.keys);
    expect(found).toEqual(['places:v1:search:{addressdetails=0&extratags=0&format=json&limit=10&namedetails=0&q=cluster%20berlin}']);
    // The miss was counted by the shared rate limit: both of its keys in one slot, or the script fails.
    expect((await placedOn('places:v1:throttle:{*}')).flatMap((p) => p.keys).length).toBeGreaterThan(0);
    expect(keyOf('Cluster Berlin')).toBe('places:v1:search:addressdetails=0&extratags=0&format=json&limit=10&namedetails=0&q=cluster%20berlin');
  });

  it('spreads answers over the masters', async () => {
    for (let i = 0; i < 12; i++) expect((await rawGet(`${a.url}${q(`spread ${i}`)}`)).status).toBe(200);
    // Fills are written just after their answer is sent.
    await eventually(async () => (await placedOn('places:v1:search:*spread*')).flatMap((p) => p.keys).length === 12);
    const placed = await placedOn('places:v1:search:*spread*');
    expect(placed.filter((p) => p.keys.length > 0).length).toBeGreaterThanOrEqual(2);
  });

  it('two instances coalesce a 200-request stampede into one upstream call, and pace misses globally', async () => {
    fake.latencyMs = 300;
    try {
      const stampede = Promise.all(Array.from({ length: 200 }, (_, i) => rawGet(`${[a, b][i % 2].url}${q('stampede')}`)));
      // While the one upstream call runs, its fill lock is held: on the master that will hold the answer.
      let lockOn: number[] = [];
      await eventually(async () => {
        lockOn = (await placedOn('places:v1:lock:*stampede*')).filter((p) => p.keys.length > 0).map((p) => p.port);
        return lockOn.length > 0;
      });
      const answers = await stampede;
      for (const r of answers) expect(r.status).toBe(200);
      await eventually(async () => (await placedOn('places:v1:search:*stampede*')).some((p) => p.keys.length > 0));
      const answerOn = (await placedOn('places:v1:search:*stampede*')).filter((p) => p.keys.length > 0).map((p) => p.port);
      expect(lockOn).toEqual(answerOn);
      expect(new Set(answers.map((r) => r.body.toString())).size).toBe(1);
      expect(upstreamFor('stampede')).toHaveLength(1);
    } finally {
      fake.latencyMs = 20;
    }

    const start = fake.requests.length;
    const burst = await Promise.all(Array.from({ length: 8 }, (_, i) => rawGet(`${[a, b][i % 2].url}${q(`paced ${i}`)}`)));
    for (const r of burst) expect(r.status).toBe(200);
    const sent: FakeRequest[] = fake.requests.slice(start);
    expect(sent).toHaveLength(8);
    const violations = sent
      .slice(1)
      .map((r, i) => r.startedAtHr - sent[i].startedAtHr)
      .filter((gap) => gap < MIN_GAP_MS);
    expect(violations).toEqual([]);
  });

  it('purges by prefix on every master', async () => {
    for (let i = 0; i < 12; i++) expect((await rawGet(`${b.url}${q(`purge me ${i}`)}`)).status).toBe(200);
    // Fills are written just after their answer is sent.
    await eventually(async () => (await placedOn('places:v1:search:*purge%20me*')).flatMap((p) => p.keys).length === 12);
    const before = await placedOn('places:v1:search:*purge%20me*');
    expect(before.filter((p) => p.keys.length > 0).length).toBeGreaterThanOrEqual(2);

    const res = await fetch(`${a.url}/admin/cache/prefix?prefix=${encodeURIComponent(keyOf('purge me '))}`, {
      method: 'DELETE',
      headers: { Authorization: `Bearer ${TOKEN}` },
    });
    const body = (await res.json()) as { deleted: number; complete: boolean };
    expect([res.status, body.deleted, body.complete]).toEqual([200, 12, true]);
    expect((await placedOn('places:v1:search:*purge%20me*')).flatMap((p) => p.keys)).toEqual([]);
    // Other answers stay, and the other instance dropped its L1 copy too (broadcast through the cluster).
    expect((await placedOn('places:v1:search:*spread*')).flatMap((p) => p.keys)).toHaveLength(12);
    const l1 = b.app.get(PlacesCacheService).l1;
    await eventually(() => l1.get(keyOf('purge me 3'), Date.now()) === undefined);
    expect((await rawGet(`${b.url}${q('purge me 3')}`)).headers['x-cache']).toBe('MISS');
  });

  it('readiness says cluster_fail while a master reports cluster_state:fail (a slot without a master), and ready once it is whole', async () => {
    type Ready = { status: string; details: { redis: { status: string; state: string; message?: string; mode: string } } };
    const ready = async () => JSON.parse((await rawGet(`${a.url}/health/ready`)).body.toString()) as Ready;
    const text = 'orphaned slot';
    const slot = clusterSlot(`{${keyOf(text).slice('places:v1:search:'.length)}}`);
    const ownerPort = await slotOwner(slot);
    const admin = createClient({ socket: { host: '127.0.0.1', port: ownerPort } });
    admin.on('error', () => undefined);
    await admin.connect();
    const stateOf = async () => clusterState(String(await admin.sendCommand(['CLUSTER', 'INFO'])));
    try {
      expect((await ready()).details.redis).toMatchObject({ status: 'up', state: 'ready', mode: 'cluster' });
      try {
        // The master forgets one of its slots: it says cluster_state:fail and refuses every command.
        await admin.sendCommand(['CLUSTER', 'DELSLOTS', String(slot)]);
        await eventually(async () => (await stateOf()) === 'fail');
        const during = await ready();
        expect(during.status).toBe('degraded');
        expect(during.details.redis).toMatchObject({ status: 'degraded', state: 'cluster_fail', mode: 'cluster' });
        expect(during.details.redis.message).toContain(`127.0.0.1:${ownerPort}`);
        // Answered all the same, from the upstream: nothing from that master's slots is cached meanwhile.
        const res = await rawGet(`${a.url}${q(text)}`);
        expect([res.status, res.headers['x-cache']]).toEqual([200, 'BYPASS']);
      } finally {
        // Whatever failed above, the next test needs the cluster whole.
        await admin.sendCommand(['CLUSTER', 'ADDSLOTS', String(slot)]).catch(() => undefined);
        await eventually(async () => (await stateOf()) === 'ok');
      }
      await eventually(async () => (await ready()).status === 'ok');
      expect((await ready()).details.redis).toMatchObject({ status: 'up', state: 'ready' });
    } finally {
      await admin.disconnect();
    }
  });

  it('a master killed under load: no 5xx, and caching resumes on its replica within 10 s of the promotion', async () => {
    // Kill the master that holds the pacer's keys: pacing must fall back to each process meanwhile.
    const victimPort = await slotOwner(clusterSlot('{pacer}'));
    const victim = cluster.servers.find((s) => s.port === victimPort)!;

    const hot = [q('Cluster Berlin'), q('spread 1'), q('spread 2')];
    // Mostly hits (L1, or the cluster), and a new question every fourth time (paced upstream).
    const traffic = [a, b].map((svc, n) =>
      startTraffic(svc.url, {
        clients: 2,
        hotPaths: hot,
        missPath: (c, i) => (i % 4 === 0 ? q(`load ${n} ${c} ${i}`) : hot[i % hot.length]),
        pauseMs: 20,
        maxDurationMs: 120_000,
      }),
    );
    await new Promise((r) => setTimeout(r, 1500));
    await victim.kill();
    await cluster.waitForFailoverFrom(victimPort, 60_000);
    const promotedAt = Date.now();
    const newOwner = await slotOwner(clusterSlot('{pacer}'));
    expect(newOwner).not.toBe(victimPort);
    const ownerRanges = await (async () => {
      const probe = createClient({ socket: { host: '127.0.0.1', port: newOwner } });
      probe.on('error', () => undefined);
      await probe.connect();
      try {
        return (await probe.clusterSlots()).filter((s) => s.master.port === newOwner).map((s) => [s.from, s.to]);
      } finally {
        await probe.disconnect();
      }
    })();
    /** A new question whose answer the promoted master stores. */
    const onNewOwner = (round: number) => {
      for (let i = 0; ; i++) {
        const text = `after ${round} ${i}`;
        const slot = clusterSlot(`{${keyOf(text).slice('places:v1:search:'.length)}}`);
        if (ownerRanges.some(([from, to]) => from <= slot && slot <= to)) return text;
      }
    };

    // Caching is back on that shard when a question asked on A is stored on the promoted master and B
    // then answers it from the cluster. Measured from when that question was asked (its upstream call
    // waits its pacing turn behind the load's misses).
    let resumedAt: number | undefined;
    for (let round = 0; resumedAt === undefined && Date.now() - promotedAt < 30_000; round++) {
      const text = onNewOwner(round);
      const askedAt = Date.now();
      expect((await rawGet(`${a.url}${q(text)}`)).status).toBe(200);
      const stored = (await cluster.keysOn(newOwner, `*${encodeURIComponent(text)}*`).catch(() => [])).length > 0;
      if (stored && (await rawGet(`${b.url}${q(text)}`)).headers['x-cache'] === 'HIT') resumedAt = askedAt;
      else await new Promise((r) => setTimeout(r, 200));
    }
    const samples = (await Promise.all(traffic.map((t) => t.stop()))).flat();

    expect(resumedAt).toBeDefined();
    expect(resumedAt! - promotedAt).toBeLessThanOrEqual(10_000);
    const failed = samples.filter((s) => s.status === 0 || s.status >= 500);
    expect(describeSamples(failed)).toBe('');
    expect(samples.length).toBeGreaterThan(20);
    // The pacer's keys are back in the cluster too.
    await eventually(async () => (await cluster.keysOn(newOwner, 'places:v1:{pacer}:*')).length > 0, 15_000);
  });
});
