import { Logger } from '@nestjs/common';
import { EventEmitter } from 'node:events';
import { types } from 'node:util';
import { createCluster, type RedisClientType, type RedisClusterType } from 'redis';
import type { RedisClusterConnection } from '../config/redis-cluster-nodes';
import { clusterSlot } from './cluster-slot';
import { KEY_PREFIX } from './cache.constants';
import { redisClientBehaviour } from './redis-client-options';
import type { RedisCommandClient, RedisSubscriberClient } from './redis-commands';
import { withTimeout } from './with-timeout';

/** How often the topology is checked against what a reachable master reports (and the seeds retried). */
const WATCH_INTERVAL_MS = 1000;

interface ClusterNodeStatus {
  address: string;
  role: 'master' | 'replica';
  /** this instance's connection to the node is ready */
  reachable: boolean;
}

type Cluster = RedisClusterType;
type ScriptOptions = { keys?: string[]; arguments?: string[] };
type NodeLike = { address: string; client?: unknown };

/**
 * Owns the node-redis cluster client. node-redis v4 refreshes its slot map only on a MOVED or ASK
 * reply: after a master dies its slots keep pointing at it and no command reaches a node that would
 * answer MOVED. So while a master is unreachable this asks a reachable one for CLUSTER SLOTS and, once
 * the replica has been promoted, sends one keyless-routed probe for a slot of the dead master: the
 * MOVED it draws makes node-redis rediscover, moving commands and the pub/sub connection over.
 */
export class ClusterConnection extends EventEmitter {
  private readonly logger = new Logger('RedisCluster');
  readonly cluster: Cluster;
  readonly commands: RedisCommandClient;
  private connected = false;
  private usable = false;
  private closing = false;
  private timer?: NodeJS.Timeout;
  private watching?: Promise<void>;

  constructor(
    readonly config: RedisClusterConnection,
    private readonly opTimeoutMs: number,
  ) {
    super();
    this.cluster = createCluster({
      rootNodes: config.nodes.map((url) => ({ url })),
      // Discovered nodes get these: the seeds' credentials and the single-Redis client's behaviour.
      defaults: {
        username: config.username,
        password: config.password,
        ...redisClientBehaviour(config.tls),
      },
    }) as unknown as Cluster;
    this.commands = new ClusterCommands(this) as unknown as RedisCommandClient;
  }

  /** The cluster answers at least some slots now (a dead master's slots fail per command until its replica takes over). */
  get isReady(): boolean {
    return this.usable;
  }

  /** Masters this instance routes to (reachable: its connection is ready) and the replicas the cluster reports (reachable: healthy in the cluster's view). */
  nodes(): ClusterNodeStatus[] {
    if (!this.connected) return [];
    const masters = mastersOf(this.cluster).map((m) => ({ address: m.address, role: 'master' as const, reachable: ready(m) }));
    const known = new Set(masters.map((m) => m.address));
    const replicas = this.reported
      .filter((n) => n.role === 'replica' && !known.has(n.address))
      .map((n) => ({ address: n.address, role: 'replica' as const, reachable: n.healthy }));
    return [...masters, ...replicas];
  }

  /** Masters this instance knows, reachable or not. */
  get masterCount(): number {
    return mastersOf(this.cluster).length;
  }

  /** Ready node-redis clients of every master (SCAN runs per node). */
  masterClients(): RedisClientType[] {
    return mastersOf(this.cluster).filter(ready).map((m) => m.client as unknown as RedisClientType);
  }

  /** Connects in the background and keeps watching the topology; never throws. */
  start(): void {
    this.cluster.on('error', () => {
      // Node errors come through here; state changes are logged by the watcher, once per episode.
    });
    this.tick();
    this.timer = setInterval(() => this.tick(), WATCH_INTERVAL_MS);
    this.timer.unref();
  }

  async close(timeoutMs: number): Promise<void> {
    this.closing = true;
    clearInterval(this.timer);
    // A connect or topology check under way would otherwise open connections after the quit.
    await this.watching;
    if (!this.cluster.isOpen) return;
    try {
      await withTimeout(this.cluster.quit(), timeoutMs, 'redis cluster quit');
    } catch {
      await this.cluster.disconnect().catch(() => undefined);
    }
  }

  private tick(): void {
    if (this.watching || this.closing) return;
    this.watching = this.watch().finally(() => (this.watching = undefined));
  }

  private async watch(): Promise<void> {
    try {
      if (!this.connected) {
        await this.cluster.connect();
        this.connected = true;
      } else {
        await this.refreshTopology();
      }
    } catch (error) {
      this.setUsable(false, `Redis Cluster unavailable (${error instanceof Error ? error.message : String(error)})`);
    }
    if (this.connected && !this.closing) {
      const masters = mastersOf(this.cluster);
      const down = masters.filter((m) => !ready(m)).map((m) => m.address);
      const up = masters.length - down.length;
      if (up === 0) this.setUsable(false, 'Redis Cluster unreachable; serving without the shared cache');
      else this.setUsable(true, `Redis Cluster connected: ${up} of ${masters.length} masters reachable${down.length ? ` (down: ${down.join(', ')})` : ''}`);
    }
  }

  /**
   * Asks a reachable master for CLUSTER NODES (the cluster's own view, replicas included). When the
   * masters that own slots are not the ones node-redis routes to (a replica was promoted), a probe
   * makes node-redis rediscover.
   */
  private async refreshTopology(): Promise<void> {
    const live = mastersOf(this.cluster).find(ready);
    if (!live) return;
    const text = await withTimeout(
      (live.client as unknown as RedisClientType).sendCommand<string>(['CLUSTER', 'NODES']),
      this.opTimeoutMs,
      'redis cluster nodes',
    );
    this.reported = parseClusterNodes(String(text));
    const owners = new Set(this.reported.filter((n) => n.ownsSlots).map((n) => n.address));
    const stale = mastersOf(this.cluster).filter((m) => !owners.has(m.address));
    if (stale.length === 0) return;
    const probe = probeKeyFor(this.cluster, stale[0]);
    // Routed to a node at random: a live one that does not own the slot answers MOVED, which rediscovers.
    for (let i = 0; i < mastersOf(this.cluster).length * 2 && mastersOf(this.cluster).some((m) => !owners.has(m.address)); i++) {
      await withTimeout(this.cluster.sendCommand(undefined, true, ['EXISTS', probe]), this.opTimeoutMs, 'redis cluster probe').catch(() => undefined);
    }
    this.logger.log(`Redis Cluster topology refreshed: masters ${mastersOf(this.cluster).map((m) => m.address).join(', ')}`);
  }

  private setUsable(usable: boolean, message: string): void {
    const changed = usable !== this.usable;
    const partial = usable && mastersOf(this.cluster).some((m) => !ready(m));
    if (changed || message !== this.lastMessage) {
      this.lastMessage = message;
      if (usable && !partial) this.logger.log(message);
      else this.logger.warn(message);
    }
    if (!changed) return;
    this.usable = usable;
    this.emit(usable ? 'ready' : 'down', message);
  }

  private lastMessage = '';
  /** The cluster's own view of its nodes, from the last CLUSTER NODES */
  private reported: ReportedNode[] = [];
}

interface ReportedNode {
  address: string;
  role: 'master' | 'replica';
  /** not flagged fail/pfail and its cluster bus link is up, as the asked master sees it */
  healthy: boolean;
  ownsSlots: boolean;
}

/** Masters that answer but do not report `cluster_state:ok`: some slots are not served (yet). */
export class ClusterNotOkError extends Error {
  constructor(readonly masters: string[]) {
    super(`cluster_state is not ok on ${masters.join(', ')} (the cluster is still forming, or a slot has no master)`);
  }
}

/** The `cluster_state` field of CLUSTER INFO (`ok` or `fail`), or undefined when it has none. */
export function clusterState(info: string): string | undefined {
  return /^cluster_state:(\w+)\s*$/m.exec(info)?.[1];
}

/** CLUSTER NODES lines: `<id> <ip:port@cport[,host]> <flags> <master> <ping> <pong> <epoch> <link> [slots…]`. */
export function parseClusterNodes(text: string): ReportedNode[] {
  const nodes: ReportedNode[] = [];
  for (const line of text.split('\n')) {
    const f = line.trim().split(' ');
    if (f.length < 8) continue;
    const address = f[1].split('@')[0];
    const flags = f[2].split(',');
    if (flags.includes('noaddr') || flags.includes('handshake')) continue;
    nodes.push({
      address,
      role: flags.includes('master') ? 'master' : 'replica',
      healthy: !flags.includes('fail') && !flags.includes('fail?') && f[7] === 'connected',
      ownsSlots: f.length > 8,
    });
  }
  return nodes;
}

/**
 * The masters, each once. node-redis lists a master once per slot range it serves, so after a reshard
 * one that serves two ranges came twice: /health/ready listed it twice and a prefix purge scanned it twice.
 */
function mastersOf(cluster: Pick<Cluster, 'masters'>): Cluster['masters'] {
  const seen = new Set<string>();
  return cluster.masters.filter((m) => !seen.has(m.address) && seen.add(m.address) !== undefined);
}

function ready(node: NodeLike): boolean {
  const client = node.client as RedisClientType | Promise<unknown> | undefined;
  return client !== undefined && !types.isPromise(client) && (client as RedisClientType).isReady;
}

/** A key whose slot `node` serves in the current map (found by trying names; a third of the slots qualify for 3 masters). */
function probeKeyFor(cluster: Cluster, node: NodeLike): string {
  for (let i = 0; i < 100_000; i++) {
    const key = `${KEY_PREFIX}probe:${i}`;
    if ((cluster.slots[clusterSlot(key)]?.master as NodeLike | undefined) === node) return key;
  }
  return `${KEY_PREFIX}probe`;
}

/**
 * The subset of node-redis client commands the service's own code uses, on a cluster: each command is
 * routed by its first key; UNLINK of keys in different slots is split per slot (a cluster refuses
 * CROSSSLOT), PING asks every master, pub/sub uses the cluster's pub/sub connection (classic pub/sub
 * reaches subscribers on every node).
 */
class ClusterCommands extends EventEmitter implements Pick<RedisSubscriberClient, 'isReady'> {
  constructor(private readonly owner: ClusterConnection) {
    super();
    owner.on('ready', () => this.emit('ready'));
  }

  get isReady(): boolean {
    return this.owner.isReady;
  }

  private get c(): Cluster {
    return this.owner.cluster;
  }

  set(...args: Parameters<Cluster['set']>) {
    return this.c.set(...args);
  }

  exists(...args: Parameters<Cluster['exists']>) {
    return this.c.exists(...args);
  }

  pTTL(...args: Parameters<Cluster['pTTL']>) {
    return this.c.pTTL(...args);
  }

  // node-redis 4.7's cluster routes EVAL/EVALSHA by FIRST_KEY_INDEX(script, options), which reads
  // the keys from the script argument: every script went to a random node and drew MOVED. Route them
  // by their first key here.
  evalSha(sha: string, options: ScriptOptions) {
    return this.script('EVALSHA', sha, options);
  }

  eval(script: string, options: ScriptOptions) {
    return this.script('EVAL', script, options);
  }

  private script(command: 'EVAL' | 'EVALSHA', body: string, { keys = [], arguments: args = [] }: ScriptOptions) {
    return this.c.sendCommand(keys[0], false, [command, body, String(keys.length), ...keys, ...args]);
  }

  publish(channel: string, message: string) {
    return this.c.publish(channel, message);
  }

  async unlink(keys: string | string[]): Promise<number> {
    const bySlot = new Map<number, string[]>();
    for (const key of Array.isArray(keys) ? keys : [keys]) {
      const slot = clusterSlot(key);
      bySlot.set(slot, [...(bySlot.get(slot) ?? []), key]);
    }
    const counts = await Promise.all([...bySlot.values()].map((group) => this.c.unlink(group)));
    return counts.reduce((a, b) => a + Number(b), 0);
  }

  /**
   * Every master answers, and each says `cluster_state:ok`. A PING alone passes on a cluster that is
   * still forming or has a slot without a master, while the commands for those slots fail
   * (CLUSTERDOWN) and the answers are BYPASS: CLUSTER INFO costs the same round trip and says so.
   */
  async ping(): Promise<string> {
    const masters = mastersOf(this.c);
    if (masters.length === 0) throw new Error('no master known');
    const down = masters.filter((m) => !ready(m)).map((m) => m.address);
    if (down.length > 0) throw new Error(`masters unreachable: ${down.join(', ')}`);
    const infos = await Promise.all(masters.map((m) => (m.client as unknown as RedisClientType).sendCommand<string>(['CLUSTER', 'INFO'])));
    const failing = masters.filter((_, i) => clusterState(String(infos[i])) !== 'ok').map((m) => m.address);
    if (failing.length > 0) throw new ClusterNotOkError(failing);
    return 'PONG';
  }

  subscribe(...args: Parameters<Cluster['subscribe']>) {
    return this.c.subscribe(...args);
  }

  unsubscribe(...args: Parameters<Cluster['unsubscribe']>) {
    return this.c.unsubscribe(...args);
  }
}
