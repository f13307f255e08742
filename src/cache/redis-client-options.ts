/**
 * How every connection to Redis behaves, the single client's and each cluster node's alike: fail
 * fast while disconnected instead of queueing commands for an unknown time, and reconnect quickly
 * and for ever, so caching resumes within seconds of Redis coming back.
 */
export function redisClientBehaviour(tls: boolean) {
  return {
    disableOfflineQueue: true,
    socket: {
      connectTimeout: 2000,
      // Heroku Redis presents a self-signed certificate: trust it for this connection only.
      ...(tls ? { tls: true as const, rejectUnauthorized: false } : {}),
      reconnectStrategy: (retries: number) => Math.min(100 + retries * 100, 1000),
    },
  };
}
