/**
 * A private Redis Cluster per test: six `redis-server --cluster-enabled yes` on free ports (each with
 * its own temp dir, see redis-server.ts), joined by `redis-cli --cluster create … --cluster-replicas 1`
 * into 3 masters with one replica each. Short node timeout so a killed master fails over in seconds.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { createClient } from 'redis';
import { RedisProcess, startRedis } from './redis-server';

const run = promisify(execFile);
const READY_TIMEOUT_MS = 30_000;

export interface ClusterNodeView {
  address: string;
  port: number;
  role: 'master' | 'replica';
  failed: boolean;
  ownsSlots: boolean;
}

export interface RedisClusterProcess {
  /** Every server, by port. */
  readonly servers: RedisProcess[];
  /** `redis://127.0.0.1:p1,redis://127.0.0.1:p2,…`: the value for REDIS_CLUSTER_NODES. */
  readonly seeds: string;
  /** CLUSTER NODES as seen by a running node. */
  nodes(): Promise<ClusterNodeView[]>;
  /** Running masters that own slots. */
  masters(): Promise<ClusterNodeView[]>;
  /** Keys on one node (SCAN … MATCH pattern). */
  keysOn(port: number, pattern?: string): Promise<string[]>;
  /** Resolves once every slot is served by a master that is not `port` and the cluster state is ok. */
  waitForFailoverFrom(port: number, timeoutMs?: number): Promise<void>;
  stop(): Promise<void>;
}

async function withClient<T>(port: number, fn: (c: ReturnType<typeof createClient>) => Promise<T>): Promise<T> {
  const client = createClient({ socket: { host: '127.0.0.1', port, connectTimeout: 1000, reconnectStrategy: false } });
  client.on('error', () => undefined);
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.disconnect().catch(() => undefined);
  }
}

function parseNodes(text: string): ClusterNodeView[] {
  return text
    .split('\n')
    .map((l) => l.trim().split(' '))
    .filter((f) => f.length >= 8)
    .map((f) => {
      const address = f[1].split('@')[0];
      const flags = f[2].split(',');
      return {
        address,
        port: Number(address.split(':')[1]),
        role: flags.includes('master') ? ('master' as const) : ('replica' as const),
        failed: flags.includes('fail') || flags.includes('fail?'),
        ownsSlots: f.length > 8,
      };
    });
}

export async function startRedisCluster(): Promise<RedisClusterProcess> {
  const servers = await Promise.all(
    Array.from({ length: 6 }, () =>
      startRedis({ args: ['--cluster-enabled', 'yes', '--cluster-config-file', 'nodes.conf', '--cluster-node-timeout', '2000'] }),
    ),
  );
  const stopAll = () => Promise.all(servers.map((s) => s.stop())).then(() => undefined);
  try {
    await run('redis-cli', ['--cluster', 'create', ...servers.map((s) => `127.0.0.1:${s.port}`), '--cluster-replicas', '1', '--cluster-yes'], {
      timeout: READY_TIMEOUT_MS,
    });
  } catch (e) {
    await stopAll();
    throw new Error(`redis-cli --cluster create failed: ${(e as { stderr?: string; stdout?: string }).stdout ?? ''}${(e as Error).message}`, { cause: e });
  }
  const nodes = async (): Promise<ClusterNodeView[]> => {
    let lastError: unknown;
    for (const s of servers) {
      try {
        return parseNodes(await withClient(s.port, (c) => c.sendCommand<string>(['CLUSTER', 'NODES'])));
      } catch (e) {
        lastError = e;
      }
    }
    throw lastError;
  };
  const clusterOk = async (): Promise<boolean> => {
    for (const s of servers) {
      try {
        const info = await withClient(s.port, (c) => c.sendCommand<string>(['CLUSTER', 'INFO']));
        if (!/cluster_state:ok/.test(info)) return false;
      } catch {
        // a killed node: judged by the others
      }
    }
    return true;
  };
  const waitFor = async (check: () => Promise<boolean>, timeoutMs: number, what: string) => {
    const deadline = Date.now() + timeoutMs;
    while (!(await check().catch(() => false))) {
      if (Date.now() > deadline) throw new Error(`Redis Cluster: ${what} within ${timeoutMs} ms`);
      await new Promise((r) => setTimeout(r, 100));
    }
  };
  // Every node must know all six and agree the cluster is ok (replicas attached) before it is used.
  try {
    await waitFor(
      async () => (await clusterOk()) && (await nodes()).filter((n) => n.role === 'replica').length === 3,
      READY_TIMEOUT_MS,
      'not ready (state ok, 3 replicas)',
    );
  } catch (e) {
    await stopAll();
    throw e;
  }
  return {
    servers,
    seeds: servers.map((s) => `redis://127.0.0.1:${s.port}`).join(','),
    nodes,
    masters: async () => (await nodes()).filter((n) => n.role === 'master' && n.ownsSlots && !n.failed),
    keysOn: (port, pattern = '*') =>
      withClient(port, async (c) => {
        const keys: string[] = [];
        for await (const k of c.scanIterator({ MATCH: pattern, COUNT: 1000 })) keys.push(k);
        return keys;
      }),
    waitForFailoverFrom: (port, timeoutMs = 30_000) =>
      waitFor(
        async () => {
          const view = await nodes();
          const owners = view.filter((n) => n.role === 'master' && n.ownsSlots && !n.failed);
          return owners.length === 3 && owners.every((n) => n.port !== port) && (await clusterOk());
        },
        timeoutMs,
        `no replica took over from 127.0.0.1:${port}`,
      ),
    stop: stopAll,
  };
}
