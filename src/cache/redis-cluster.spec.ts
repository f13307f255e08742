import { ClusterNotOkError, clusterState, parseClusterNodes } from './redis-cluster';

describe(parseClusterNodes.name, () => {
  // CLUSTER NODES from a Redis 7.0 cluster just after 127.0.0.1:7002 died and 127.0.0.1:7005 took its slots.
  const text = [
    'a1 127.0.0.1:7000@17000 myself,master - 0 0 1 connected 0-5460',
    'a2 127.0.0.1:7001@17001 master - 0 1700000000000 2 connected 5461-10922',
    'a3 127.0.0.1:7002@17002 master,fail - 1700000000000 1700000000000 3 disconnected',
    'a4 127.0.0.1:7003@17003,node-4 slave a1 0 1700000000000 1 connected',
    'a5 127.0.0.1:7004@17004 slave a2 0 1700000000000 2 connected',
    'a6 127.0.0.1:7005@17005 master - 0 1700000000000 7 connected 10923-16383',
    '',
  ].join('\n');

  it('reads address, role, health and slot ownership of every node', () => {
    expect(parseClusterNodes(text)).toEqual([
      { address: '127.0.0.1:7000', role: 'master', healthy: true, ownsSlots: true },
      { address: '127.0.0.1:7001', role: 'master', healthy: true, ownsSlots: true },
      { address: '127.0.0.1:7002', role: 'master', healthy: false, ownsSlots: false },
      { address: '127.0.0.1:7003', role: 'replica', healthy: true, ownsSlots: false },
      { address: '127.0.0.1:7004', role: 'replica', healthy: true, ownsSlots: false },
      { address: '127.0.0.1:7005', role: 'master', healthy: true, ownsSlots: true },
    ]);
  });

  it('skips nodes still in handshake or without an address', () => {
    expect(parseClusterNodes('b1 :0@0 master,noaddr - 0 0 0 disconnected\nb2 10.0.0.9:6379@16379 handshake - 0 0 0 connected')).toEqual([]);
  });
});

describe(clusterState.name, () => {
  // CLUSTER INFO from Redis 7.0, CRLF line ends as Redis sends them.
  const info = (state: string) =>
    ['cluster_enabled:1', `cluster_state:${state}`, 'cluster_slots_assigned:16383', 'cluster_slots_ok:16383', 'cluster_known_nodes:6', ''].join('\r\n');

  it('reads the state of a whole cluster and of one with a slot unserved', () => {
    expect(clusterState(info('ok'))).toBe('ok');
    expect(clusterState(info('fail'))).toBe('fail');
  });

  it('is undefined for an answer without the field (not taken for ok)', () => {
    expect(clusterState('cluster_enabled:0\r\n')).toBeUndefined();
    expect(clusterState('')).toBeUndefined();
  });

  it('names the masters in the readiness message', () => {
    expect(new ClusterNotOkError(['127.0.0.1:7000', '127.0.0.1:7001']).message).toBe(
      'cluster_state is not ok on 127.0.0.1:7000, 127.0.0.1:7001 (the cluster is still forming, or a slot has no master)',
    );
  });
});
